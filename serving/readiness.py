"""What /readyz says: ready, or the reason it is not, within a bound (READINESS_CHECK_S < 1 s).

BentoML's own probe of a dependency waits up to 5 s for the runner's /readyz
(``_bentoml_impl/server/app.py``, ``runner_probe``): with the runner paused, /readyz gave no answer
within 5 s, and a load balancer with a 1 s probe timeout removed the instance only by timing out
(issue 35). The probe is switched off (settings.py) and the service's ``__is_ready__`` asks this
instead: not ready while the instance drains after SIGTERM (serving/drain.py), or when the runner
does not say ready within ``check_s``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("armor.readiness")

DRAINING = "shutting down: SIGTERM received, finishing the requests in flight"


class Readiness:
    """``reason()``: None when ready, else why not (the body of /readyz's 503). ``heard_recently``:
    whether the runner answered a prediction call just now (runners/hop.py); then it is not asked,
    since a runner busy with batches answers /readyz late and the instance would flap out of the
    balancer under load."""

    def __init__(
        self,
        runner_ready: Callable[[], Awaitable[bool]],
        check_s: float,
        draining: Callable[[], bool],
        heard_recently: Callable[[], bool] | None = None,
    ):
        self.runner_ready, self.check_s, self.draining = runner_ready, check_s, draining
        self.heard_recently = heard_recently

    async def reason(self) -> str | None:
        if self.draining():
            return DRAINING
        if self.heard_recently is not None and self.heard_recently():
            return None
        try:
            async with asyncio.timeout(self.check_s):
                ready = await self.runner_ready()
        except TimeoutError:
            return f"the runner did not answer the readiness check within {self.check_s:g} s"
        except Exception as exc:  # connection refused, reset, ...: the runner is down or restarting
            return f"the runner cannot be reached ({type(exc).__name__})"
        return None if ready else "the runner's models are not loaded yet"
