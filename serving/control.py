"""BentoML's process manager (circus) listens on Unix sockets only its user can reach.

``bentoml serve`` starts a circus arbiter that supervises the workers and takes commands (list,
stop, restart, add or replace watchers) on a ZeroMQ endpoint and publishes events on another.
BentoML 1.4.40 hard-codes both as ``tcp://127.0.0.1:<free port>``
(``bentoml/_internal/utils/circus/__init__.py``, ``create_standalone_arbiter``), with no setting to
change them and no authentication: any process on the host, of any user, could stop or replace
the workers (issue 34).

``install`` replaces the arbiter classes that function builds from (it looks them up when it is
called, after the service module is imported) with subclasses that bind both endpoints to
``ipc://`` sockets in a fresh directory of mode 0700 (``tempfile.mkdtemp``), removed when the
arbiter stops: only the serving user (and root) can connect. The serve's own use of the
endpoints (its reload plugin, circusctl given the path) works as before.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from bentoml._internal.utils import circus

_ORIGINAL = "_armor_original"


def private_endpoints(base: type[Any]) -> type[Any]:
    """``base`` (an arbiter class) with its control and pub/sub endpoints in a private directory."""

    class PrivateEndpointsArbiter(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            directory = tempfile.mkdtemp(prefix="armor-circus-")  # 0700
            kwargs |= {"endpoint": f"ipc://{directory}/control", "pubsub_endpoint": f"ipc://{directory}/events"}
            super().__init__(*args, **kwargs)
            self.control_directory = directory
            self.exit_stack.callback(shutil.rmtree, directory, ignore_errors=True)

    setattr(PrivateEndpointsArbiter, _ORIGINAL, base)
    return PrivateEndpointsArbiter


def install() -> None:
    """Every arbiter BentoML creates from now on listens privately; idempotent."""
    for name in ("Arbiter", "ThreadedArbiter"):
        current = getattr(circus, name)
        setattr(circus, name, private_endpoints(getattr(current, _ORIGINAL, current)))
