"""How ``bentoml serve`` runs this service's processes, where BentoML's own defaults are not safe
enough: its process manager's control sockets (``control``)."""
