"""Helpers shared by the tests: free ports, a real redis-server, a real `bentoml serve`."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import redis

from tests.requirements import require_binary

# Generous bound for "returns promptly" (target ~2 x 50 ms) so a busy CI machine
# does not flake; measured values are printed.
PROMPT_S = 0.5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server subprocess the test can stop, restart, freeze and thaw."""

    def __init__(self, binary: str, port: int) -> None:
        self.binary = binary
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self._wait_until_ready()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGCONT)  # a frozen server cannot exit
        self.process.terminate()
        self.process.wait(timeout=5)
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def raw_client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)

    def _wait_until_ready(self, limit_s: float = 5.0) -> None:
        deadline = time.monotonic() + limit_s
        client = self.raw_client()
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
        finally:
            client.close()


def require_redis_server() -> str:
    """The redis-server binary (group "redis" of tests/requirements.py)."""
    return require_binary("redis-server", group="redis", enable="apt-get install -y redis-server")


class PostgresServer:
    """A PostgreSQL server of Debian's `postgresql` package in a temporary data directory, on a
    free port of 127.0.0.1 with trust authentication; the test can stop it hard and start it again.
    As root it runs as the `postgres` user (the server refuses to run as root)."""

    def __init__(self, bin_dir: str, root: str) -> None:
        self.bin_dir, self.data = bin_dir, os.path.join(root, "data")
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.log = os.path.join(root, "server.log")
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        command = [os.path.join(self.bin_dir, tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "start")

    def kill(self) -> None:
        """Stop without a shutdown checkpoint (as a crash would): clients see their connections drop."""
        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")


def require_postgres_bin_dir() -> str:
    """The directory of Debian's PostgreSQL server binaries (group "postgresql" of tests/requirements.py)."""
    from pathlib import Path

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    initdb = require_binary("initdb", group="postgresql", enable="apt-get install -y postgresql", search=tuple(found))
    return os.path.dirname(initdb)


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BentoServer:
    """`bentoml serve` of this repository's service (or of a built Bento tag) on a free port."""

    def __init__(self, env: dict[str, str], target: str = "service:ArmorService"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "PYTHONPATH": REPO}
        self.target = target
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 180.0) -> None:
        binary = os.path.join(os.path.dirname(sys.executable), "bentoml")
        binary = binary if os.path.exists(binary) else shutil.which("bentoml")
        self.log = open(os.path.join(self.env["BENTOML_HOME"], f"serve-{self.port}.log"), "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [binary, "serve", self.target, "--port", str(self.port)],
            cwd=REPO,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bentoml serve exited with {self.process.returncode}; see {self.log.name}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"bentoml serve not ready after {timeout_s} s; see {self.log.name}")

    def stop(self) -> None:
        if self.process is None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        self.process = None
        self.log.close()


EXAMPLE_REQUEST = "example_request.json"


def example() -> dict:
    """The documented example request (tests/testdata/example_request.json)."""
    import json
    from pathlib import Path

    return json.loads((Path(__file__).parent / "testdata" / EXAMPLE_REQUEST).read_text())


def request(**changes):
    """The example as a validated PredictionRequest, with top-level blocks replaced."""
    from api.prediction.schemas import PredictionRequest

    return PredictionRequest.model_validate({**example(), **changes})


class CountingRunner:
    """A runner double over an in-process RunnerCore: counts model calls and yields to the loop
    while 'computing', so concurrent callers overlap."""

    def __init__(self, core, delay_s: float = 0.05):
        self.core, self.delay_s, self.calls, self.versioned, self.uncached = core, delay_s, 0, 0, 0

    async def predict(self, rows, version, kind):
        self.calls += 1
        self.versioned += version is not None
        self.uncached += not kind.cache
        await asyncio.sleep(self.delay_s)
        return self.core.answer(rows, kind, version)

    async def card(self, version=None):
        return self.core.card(version).to_dict()


class FakeClock:
    """Monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_cache(clock: FakeClock, **overrides: object):
    options: dict = {"max_entries": 100, "max_memory_bytes": 10**6, "ttl_seconds": 10.0}
    options.update(overrides)
    from caching import TTLLRUCache

    return TTLLRUCache(clock=clock, **options)


async def let_tasks_run(rounds: int = 5) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)
