"""The web page for armor engineers: predict, sweep an input, screen a CSV, share and compare.

``ui/static/`` holds the page (plain ES modules, no build step) and its vendored libraries with
their licences (``ui/static/vendor/``, see VENDORED.md there); ``ui/serve.py`` mounts it on the
service's app at ``/ui/`` and sends ``/`` there. The page talks to the service's own routes only
and requests nothing from any other host (its Content-Security-Policy says so to the browser).
"""
