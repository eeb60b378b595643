"""Predictive caching: answers computed before anyone asks for them.

- ``Warmer``: on start-up, and when a family's default model changes, the PREDICTIVE_WARMUP_TOP
  materials most requested in the last PREDICTIVE_WARMUP_WINDOW_S (from the prediction log) are
  computed and put into the response cache. They are sent together: the coalescer stacks them into
  runner calls of MAX_BATCH_SIZE rows (api/prediction/coalescer.py). The whole warm-up stops after
  PREDICTIVE_WARMUP_TIMEOUT_S, and start-up (so /readyz) waits for it at most
  PREDICTIVE_WARMUP_READY_WAIT_S; it goes on in the background after that.
- ``SweepPrefetch``: when three consecutive requests of a family (from one API key, or from anyone
  without keys) differ in one numeric input by the same step, the next SWEEP_PREFETCH_POINTS points
  of that walk are computed in the background, one sweep at a time per worker (the budget).

Both answer with the default model and the askers' own options (intervals, importances), so the
cached entries are under the keys the next requests will look up. An answer the shared layer
(Redis, or the machine's SQLite file) holds already is copied into the worker's own layer, not
computed again (PredictionFlow.precompute).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from api.prediction.families import Request
from api.prediction.flow import Precomputed, PredictionFlow
from api.prediction.schemas import HardnessRequest, PredictionRequest
from api.transport.access import CALLER_KEY_ID
from api.transport.errors import ApiError
from api.transport.handlers import RUNNER_FAILURES
from features.catalogue import FAMILIES as MATERIAL_FAMILIES
from predlog.store import DATABASE_ERRORS, Store
from settings import PredictionLogSettings

logger = logging.getLogger("armor.warmup")
# a material that no longer validates, or a runner not up yet or busy: skipped (its first asker computes it)
SKIPPED: tuple[type[Exception], ...] = (ApiError, *RUNNER_FAILURES)
READY_POLL_S = 0.5  # how often the warm-up asks whether the runner answers yet
CONCURRENCY = 64  # requests of a warm-up in flight at once (the coalescer stacks them into runner calls)


def request_of(family: str, material: dict[str, Any], options: dict[str, Any] | None = None) -> Request | None:
    """The request whose canonical form is ``material`` (api/prediction/keys.py), with the answer
    ``options``; None when it no longer validates (the catalogue changed since it was logged)."""
    flags = options or {}
    try:
        if family in MATERIAL_FAMILIES:
            return PredictionRequest.model_validate(material | flags)
        return HardnessRequest.model_validate({"formula": material["formula"], "load_n": material["loads"]} | flags)
    except (ValidationError, KeyError):
        return None


@dataclass
class WarmupReport:
    """What the last warm-up did (``/api/v1/performance`` shows it): of its materials, how many
    were computed, held by the worker's own cache layer already, copied from the shared layer
    (Redis, or the machine's SQLite file), or failed."""

    reason: str = ""
    materials: int = 0
    computed: int = 0
    already_cached: int = 0
    from_shared: int = 0
    failed: int = 0
    seconds: float = 0.0
    finished: bool = False

    def count(self, outcome: Precomputed) -> None:
        self.computed += outcome is Precomputed.COMPUTED
        self.already_cached += outcome is Precomputed.HELD
        self.from_shared += outcome is Precomputed.FROM_SHARED


@dataclass
class Warmer:
    flow: PredictionFlow
    store: Store
    settings: PredictionLogSettings
    last: WarmupReport = field(default_factory=WarmupReport)
    _task: asyncio.Task[WarmupReport] | None = None
    _serving: dict[str, str] = field(default_factory=dict)

    async def start_up(self) -> None:
        """Start the warm-up and wait for it at most PREDICTIVE_WARMUP_READY_WAIT_S."""
        task = self.start("start-up")
        if task is not None:
            await asyncio.wait({task}, timeout=self.settings.warmup_ready_wait_s)

    def start(self, reason: str, family: str | None = None) -> asyncio.Task[WarmupReport] | None:
        if self.settings.warmup_top <= 0 or (self._task is not None and not self._task.done()):
            return None
        self._task = asyncio.get_running_loop().create_task(self.warm(reason, family), name="predictive-warmup")
        return self._task

    def default_changed(self, family: str, tag: str) -> None:
        """A family's default model was learnt (nothing to do) or changed (warm its top materials)."""
        previous, self._serving[family] = self._serving.get(family), tag
        if previous is not None and previous != tag:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing is served yet
                self.start(f"{family} model {tag}", family)

    async def warm(self, reason: str, family: str | None = None) -> WarmupReport:
        report = self.last = WarmupReport(reason)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.warmup_timeout_s):
                await self._warm(report, family)
            report.finished = True
        except TimeoutError:
            logger.warning("predictive warm-up stopped after %.0f s", self.settings.warmup_timeout_s)
        except DATABASE_ERRORS as exc:
            logger.warning("predictive warm-up could not read the log (%s)", type(exc).__name__)
        except Exception:  # a background task: whatever went wrong is logged, never lost
            logger.exception("predictive warm-up failed")
        report.seconds = time.perf_counter() - started
        return report

    async def _runner_ready(self) -> None:
        """Wait until every family's model card can be asked for: under bentoml serve the runner's
        client is not usable until BentoML has connected it, which the start-up hook does not
        wait for (it raised AttributeError then). Whatever a try raises, it is tried again."""
        while True:
            try:
                for family in self.flow.families:
                    await self.flow.cards.default(family)
                return
            except Exception as exc:  # noqa: BLE001 - any failure means: not yet
                logger.debug("runner not ready for the warm-up (%s)", type(exc).__name__)
                await asyncio.sleep(READY_POLL_S)

    async def _warm(self, report: WarmupReport, family: str | None) -> None:
        await self._runner_ready()
        await self.store.open()
        since = time.time() - self.settings.warmup_window_s
        top = await self.store.top_materials(since, self.settings.warmup_top)
        requests = [(f, request_of(f, orjson.loads(m), orjson.loads(o))) for f, m, o, _ in top if family in (None, f)]
        found = [(f, r) for f, r in requests if r is not None]
        report.materials = len(found)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(f: str, request: Request) -> None:
            async with gate:
                try:
                    outcome = await self.flow.precompute(f, request)
                except SKIPPED:
                    report.failed += 1
                    return
            report.count(outcome)

        await asyncio.gather(*(one(f, r) for f, r in found))


@dataclass
class _Walk:
    materials: list[dict[str, Any]] = field(default_factory=list)  # the last three, oldest first


def single_step(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, str, float] | None:
    """(block, input, step) when ``after`` differs from ``before`` in exactly one numeric input of
    one block (the composition counts as one block: a fraction's change moves the others)."""
    if before.keys() != after.keys():
        return None
    changed = [block for block in after if before[block] != after[block]]
    if len(changed) != 1 or changed[0] == "composition":
        return None
    block = changed[0]
    a, b = before[block], after[block]
    inputs = [name for name in b if a.get(name) != b[name]]
    if len(inputs) != 1 or not isinstance(b[inputs[0]], int | float) or isinstance(b[inputs[0]], bool):
        return None
    return block, inputs[0], float(b[inputs[0]]) - float(a[inputs[0]])


def next_points(walk: list[dict[str, Any]], points: int) -> list[dict[str, Any]]:
    """The next ``points`` materials of an even walk of three, or none."""
    first, second = single_step(walk[0], walk[1]), single_step(walk[1], walk[2])
    if first is None or second is None or first[:2] != second[:2]:
        return []
    block, name, step = second
    if step == 0 or abs(step - first[2]) > 1e-9 * max(abs(step), 1.0):
        return []
    last = float(walk[2][block][name])
    return [walk[2] | {block: walk[2][block] | {name: last + k * step}} for k in range(1, points + 1)]


class SweepPrefetch:
    """Watches a worker's answered requests (PredictionFlow.observers) for sweeps."""

    MAX_WALKERS = 1024  # callers remembered; beyond it the memory is cleared

    def __init__(self, flow: PredictionFlow, points: int):
        self.flow, self.points = flow, points
        self._walks: dict[tuple[str, str | None], _Walk] = {}
        self._task: asyncio.Task[None] | None = None
        self.prefetched = 0  # points computed (not those found in a cache layer)
        self.copied = 0  # points copied from the shared layer into this worker's

    def observe(self, family: str, request: Request, canonical: dict[str, Any]) -> None:
        if family not in MATERIAL_FAMILIES:
            return
        walker = (family, CALLER_KEY_ID.get())
        if walker not in self._walks and len(self._walks) >= self.MAX_WALKERS:
            self._walks.clear()
        walk = self._walks.setdefault(walker, _Walk())
        if walk.materials and walk.materials[-1] == canonical:
            return
        walk.materials = [*walk.materials[-2:], canonical]
        if len(walk.materials) == 3 and (self._task is None or self._task.done()):
            ahead = next_points(walk.materials, self.points)
            if ahead:
                options = request.model_dump(include={"include_uncertainty", "include_feature_importance"})
                self._task = asyncio.get_running_loop().create_task(self._prefetch(family, ahead, options))

    async def _prefetch(self, family: str, materials: list[dict[str, Any]], options: dict[str, Any]) -> None:
        requests = [r for r in (request_of(family, m, options) for m in materials) if r is not None]
        for request in requests:  # in order: the next point first
            try:
                outcome = await self.flow.precompute(family, request)
                self.prefetched += outcome is Precomputed.COMPUTED
                self.copied += outcome is Precomputed.FROM_SHARED
            except SKIPPED:
                return  # out of the accepted range, or the runner is busy: the walk's askers compute it
