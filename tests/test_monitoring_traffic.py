"""monitoring/traffic.py: BentoML's traffic series, recorded by the subclass's own HTTP path.

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
    from monitoring import traffic
    from monitoring.tally import Tally

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
    tally = Tally()
    ours = traffic._bounded(original, frozenset({"/a", "/boom", "/livez"}), lambda: tally)(app, namespace="ours")
    theirs = original(app, namespace="theirs")
    run(ours, ["/a", "/a", "/boom", "/livez", "/a", "/made-up"])
    run(theirs, ["/a", "/a", "/boom", "/livez", "/a", "/(unrouted)"])  # what ours labels /made-up as
    tally.flush()  # ours are written once a second under serve (monitoring/tally.py)
    text = ours.metrics_client.generate_latest().decode()
    timing = re.compile(r"\\d+\\.\\d+e[+-]\\d+|\\d\\.\\d{5,}")  # durations and timestamps differ run to run

    bucket = re.compile(r"(_bucket\\{.*\\}) \\S+$")  # which bucket a duration falls in is timing too

    def series(namespace):
        prefix = namespace + "_"
        lines = [bucket.sub(r"\\1 B", line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix)]
        return sorted(timing.sub("T", line) for line in lines)

    print(len(series("ours")), series("ours") == series("theirs"))
    """
)


def test_the_cheaper_http_path_records_exactly_what_bentoml_records():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    count, same = done.stdout.split()
    assert int(count) > 40 and same == "True", done.stdout


SHORTCUT_SCRIPT = textwrap.dedent(
    """
    import asyncio, os, tempfile
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp()
    from bentoml._internal.server.http import instruments
    from monitoring import traffic
    from monitoring.tally import Tally

    seen = []

    def answering(name):
        async def app(scope, receive, send):
            seen.append((name, scope["path"]))
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"x"})
        return app

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        pass

    shortcut = traffic.Shortcut("/api/", answering("shortcut"))
    known = frozenset({"/api/a", "/b"})
    tally = Tally()
    middleware = traffic._bounded(instruments.RunnerTrafficMetricsMiddleware, known, lambda: tally, shortcut)(
        answering("bentoml"), namespace="cut"
    )

    async def go():
        for path in ["/api/a", "/b", "/api/made-up", "/made-up", "/api/a"]:
            await middleware({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send)

    asyncio.run(go())
    tally.flush()
    text = middleware.metrics_client.generate_latest().decode()
    totals = sorted(
        line.split('endpoint="')[1].split('"')[0] + " " + line.split()[-1]
        for line in text.splitlines()
        if line.startswith("cut_request_total{")
    )
    print(seen)
    print(totals)
    """
)


def test_the_shortcut_sends_its_paths_straight_to_its_app_and_they_are_still_counted():
    done = subprocess.run(
        [sys.executable, "-c", SHORTCUT_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    seen, totals = done.stdout.splitlines()
    assert seen == str(
        [
            ("shortcut", "/api/a"),
            ("bentoml", "/b"),
            ("shortcut", "/api/made-up"),  # the app sees the path the client sent
            ("bentoml", "/made-up"),
            ("shortcut", "/api/a"),
        ]
    )
    assert totals == str(["/(unrouted) 2.0", "/api/a 2.0", "/b 1.0"])


NOT_FOUND_SCRIPT = textwrap.dedent(
    """
    import asyncio, os, tempfile
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp()
    from bentoml._internal.server.http import instruments
    from monitoring import traffic
    from monitoring.tally import Tally

    async def bentoml_app(scope, receive, send):  # Starlette's router: plain text for what it does not route
        found = scope["path"] in ("/a", "/static_content/x.js")
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200 if found else 404, "headers": headers})
        await send({"type": "http.response.body", "body": b"found" if found else b"Not Found"})

    async def service_app(scope, receive, send):
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"service": 404}'})

    async def receive():
        return {"type": "http.request", "body": b""}

    shortcut = traffic.Shortcut("/api/", service_app)
    tally = Tally()
    not_found = lambda: b'{"error": 404}'
    ours = traffic._bounded(
        instruments.RunnerTrafficMetricsMiddleware, frozenset({"/a"}), lambda: tally, shortcut, not_found
    )(bentoml_app, namespace="ours")

    async def get(path):
        sent = []

        async def send(message):
            sent.append(message)

        await ours({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send)
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return sent[0]["status"], dict(sent[0]["headers"]).get(b"content-type"), body

    async def main():
        for path in ("/made-up", "/static_content/x.js", "/a", "/api/made-up"):
            print(path, await get(path))

    asyncio.run(main())
    """
)


def test_a_path_nobody_routes_gets_the_json_404_and_bentomls_own_files_are_still_served():
    """Issue 34: unknown paths outside /api/v1 were Starlette's plain-text "Not Found"."""
    done = subprocess.run(
        [sys.executable, "-c", NOT_FOUND_SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.splitlines() == [
        "/made-up (404, b'application/json', b'{\"error\": 404}')",
        "/static_content/x.js (200, b'text/plain; charset=utf-8', b'found')",
        "/a (200, b'text/plain; charset=utf-8', b'found')",
        "/api/made-up (404, b'application/json', b'{\"service\": 404}')",
    ]


def test_a_path_under_a_mount_is_labelled_by_the_mount_not_unrouted():
    """Issue 31's page: its files under /ui/ are one series, not '/(unrouted)' beside made-up paths."""
    from monitoring.traffic import UNROUTED, endpoint_label

    known, mounts = frozenset({"/api/v1/models", "/ui"}), ("/ui/",)
    assert endpoint_label("/api/v1/models", known, mounts) == "/api/v1/models"
    assert endpoint_label("/ui", known, mounts) == "/ui"
    assert endpoint_label("/ui/js/app.js", known, mounts) == "/ui/"
    assert endpoint_label("/uix/made-up", known, mounts) == UNROUTED
    assert endpoint_label("/x1-2", known, ()) == UNROUTED
