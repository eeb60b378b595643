"""monitoring/bounded_labels.py: BentoML's traffic series, recorded by the subclass's own HTTP path.

Run in a child process: prometheus_client picks its multiprocess value class when it is first
imported, from PROMETHEUS_MULTIPROC_DIR, as under bentoml serve."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import asyncio, os, re, sys, tempfile
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp()
    from bentoml._internal.server.http import instruments
    from monitoring import bounded_labels

    async def app(scope, receive, send):
        status = 503 if scope["path"] == "/boom" else 200 if scope["path"] in ("/a", "/livez") else 404
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await send({"type": "http.response.body", "body": b"y"})

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        pass

    def run(middleware, paths):
        async def go():
            for path in paths:
                await middleware({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send)
        asyncio.run(go())

    original = instruments.RunnerTrafficMetricsMiddleware
    ours = bounded_labels._bounded(original, frozenset({"/a", "/boom", "/livez"}))(app, namespace="ours")
    theirs = original(app, namespace="theirs")
    run(ours, ["/a", "/a", "/boom", "/livez", "/a", "/made-up"])
    run(theirs, ["/a", "/a", "/boom", "/livez", "/a", "/(unrouted)"])  # what ours labels /made-up as
    text = ours.metrics_client.generate_latest().decode()
    timing = re.compile(r"\\d+\\.\\d+e[+-]\\d+|\\d\\.\\d{5,}")  # durations and timestamps differ run to run

    def series(namespace):
        prefix = namespace + "_"
        return sorted(timing.sub("T", line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix))

    print(len(series("ours")), series("ours") == series("theirs"))
    """
)


def test_the_cheaper_http_path_records_exactly_what_bentoml_records():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    count, same = done.stdout.split()
    assert int(count) > 40 and same == "True", done.stdout
