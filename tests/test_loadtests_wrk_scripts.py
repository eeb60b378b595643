"""loadtests/wrk_*.lua: every wrk thread sends its own materials (a cold cell must be cold).

Until 2026-11-27 both threads sent the same sequence (a chunk-level local hid the per-thread
offset that ``setup`` sets), and the service's caches answered the second copies."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.requirements import require_binary

LOADTESTS = Path(__file__).resolve().parents[1] / "loadtests"


@pytest.fixture(scope="module")
def wrk() -> str:
    return require_binary("wrk", group="wrk", enable="apt-get install -y wrk")


def sent_bodies(wrk: str, script: str, argument: int = 1000) -> list[bytes]:
    """The request bodies wrk sends with ``script`` (2 threads, 4 connections, 1 s) to a recorder."""
    bodies: list[bytes] = []

    class Recorder(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # head and body in one write (else delayed ACKs hold each request ~40 ms)
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # wrk drops its connections mid-request when its time is up

    server = Server(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/predict/mechanical"
        subprocess.run(
            [wrk, "-t2", "-c4", "-d1s", "-s", str(LOADTESTS / script), url, "--", str(argument)],
            check=True,
            capture_output=True,
            timeout=30,
        )
    finally:
        server.shutdown()
    return bodies


def material(body: bytes) -> tuple[float, float]:
    parsed = json.loads(body)
    return parsed["processing"]["grain_size"], parsed["microstructure"]["porosity"]


def test_every_new_material_request_is_a_material_no_other_request_sent(wrk: str) -> None:
    materials = [material(b) for b in sent_bodies(wrk, "wrk_new_material.lua")]
    assert len(materials) > 200 and len(set(materials)) == len(materials)


def test_the_mixed_load_repeats_its_100_materials_and_sends_each_new_one_once(wrk: str) -> None:
    repeated = {(round(20.0 + k / 10.0, 4), round(0.15 + k / 1000.0, 5)) for k in range(100)}
    materials = [material(b) for b in sent_bodies(wrk, "wrk_mixed.lua")]
    new = [m for m in materials if m not in repeated]
    assert len(materials) > 200 and 0.2 < len(new) / len(materials) < 0.4
    assert len(set(new)) == len(new)


def test_the_script_argument_moves_a_run_to_other_materials(wrk: str) -> None:
    first = {material(b) for b in sent_bodies(wrk, "wrk_new_material.lua", 1000)}
    other = {material(b) for b in sent_bodies(wrk, "wrk_new_material.lua", 500_000)}
    assert first and other and not first & other
