"""client/: ArmorClient and the screen command against the in-process app, retries on 503 and
refused connections, the exit status when the service cannot be reached, global options on either
side of the sub-command, the API key, significant figures and formula-like cells in the CSV."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from client import ArmorClient, ServiceError, ServiceUnreachable, screen_csv
from client.__main__ import _parser, main
from client.screen import DEFAULT_DIGITS
from tests.support import free_port
from tests.test_api_batch_flow import CSV_HEADER, csv_line, material


@pytest.fixture
def armor(client) -> ArmorClient:
    """An ArmorClient whose requests go to the in-process app of the ``client`` fixture."""
    return ArmorClient("http://testserver", transport=client._transport, sleep=lambda s: None)


def test_predict_many_yields_every_row_in_order_across_batches(armor, client):
    materials = [material(i) for i in range(7)] + [{"composition": {"SiC": 2.0}}] + [material(9)]
    results = list(armor.predict_many("mechanical", materials, batch_rows=4))
    assert [r.row for r in results] == list(range(9))
    assert results[7].error is not None and results[7].error.status == 422 and results[7].values is None
    assert results[7].body["error"]["details"][0]["field"] == "composition.SiC"
    single = armor.predict("mechanical", material(9), include_feature_importance=False)
    assert results[8].values == single.values
    assert armor.status()["status"] == "ok"


def test_answers_are_typed_and_equal_the_json(armor, client):
    body = material(3)
    raw = client.post("/api/v1/predict/ballistic", json=body).json()
    typed = armor.predict("ballistic", body)
    assert typed["v50_velocity"].value == raw["predictions"]["v50_velocity"]["value"]
    assert [typed["v50_velocity"].low, typed["v50_velocity"].high] == raw["predictions"]["v50_velocity"][
        "confidence_interval"
    ]
    assert typed.model == f"{raw['model_info']['name']}:{raw['model_info']['version']}"
    hardness = armor.hardness("TiB2", [0.98, 9.8])
    assert [at.load_n for at in hardness.loads] == [0.98, 9.8]
    assert hardness.loads[1].hardness.unit == "GPa" and hardness.formula == "TiB2"
    with pytest.raises(ValueError, match="hardness"):
        armor.predict("hardness", {"formula": "B4C"})


def test_the_async_client_gives_what_the_sync_one_gives(armor, client):
    import asyncio

    from client import AsyncArmorClient

    class ToApp(httpx.AsyncBaseTransport):
        """The in-process app, reached through the sync test client (one request at a time)."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            answer = client._transport.handle_request(request)
            answer.read()
            headers = {k: v for k, v in answer.headers.items() if k not in ("content-encoding", "content-length")}
            return httpx.Response(answer.status_code, headers=headers, content=answer.content)

    materials = [material(i) for i in range(3)] + [{"composition": {"SiC": 2.0}}]

    async def run():
        async with AsyncArmorClient("http://testserver", transport=ToApp()) as aio:
            one = await aio.predict("mechanical", material(1))
            rows = [row async for row in aio.predict_many("mechanical", materials, batch_rows=2)]
            return one, rows, await aio.hardness("B4C")

    one, rows, hardness = asyncio.run(run())
    assert one.values == armor.predict("mechanical", material(1)).values
    assert [r.row for r in rows] == [0, 1, 2, 3] and rows[3].error is not None
    assert hardness.loads[0].load_n == 9.8


def test_screen_csv_writes_one_row_per_input_row_with_the_id_column(armor):
    lines = ["sample," + CSV_HEADER] + [f"s{i}," + csv_line(i) for i in range(5)]
    lines[3] = "s2,0.6,0.3,0.1,hot,50,10,0.02,argon,7.62x51_m80"
    out = io.StringIO()
    seen: list[int] = []
    summary = screen_csv(
        armor, "mechanical", io.StringIO("\n".join(lines)), out, batch_rows=2, id_column="sample", on_rows=seen.append
    )
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["sample"], r["row"], r["status"]) for r in rows] == [
        ("s0", "0", "200"),
        ("s1", "1", "200"),
        ("s2", "2", "422"),
        ("s3", "3", "200"),
        ("s4", "4", "200"),
    ]
    assert rows[2]["error"] == "invalid request: processing.sintering_temperature: must be a number, got 'hot'"
    assert (summary.rows, summary.predicted, summary.errors, len(seen)) == (5, 4, 1, 5)


def test_a_503_is_retried_after_retry_after_then_succeeds():
    answers = iter([httpx.Response(503, headers={"retry-after": "2"}), httpx.Response(200, json={"status": "ok"})])
    slept: list[float] = []
    transport = httpx.MockTransport(lambda request: next(answers))
    armor = ArmorClient("http://x", transport=transport, backoff_s=0.1, sleep=slept.append)
    assert armor.status() == {"status": "ok"}
    assert slept == [2.0]


def test_errors_after_the_retries_are_raised_with_the_service_message():
    body = {"error": {"status": 503, "type": "unavailable", "message": "retry shortly"}}
    armor = ArmorClient(
        "http://x",
        transport=httpx.MockTransport(lambda request: httpx.Response(503, json=body)),
        retries=2,
        sleep=lambda s: None,
    )
    with pytest.raises(ServiceError) as raised:
        armor.status()
    assert raised.value.status == 503 and raised.value.message == "retry shortly"


def test_rows_that_come_back_503_are_sent_again(armor, client, runner_cores):
    """The runner fails once in the middle of a batch: the failed rows are re-sent, the output
    has every row predicted, in order."""
    from runners.local import LocalRunnerClient

    class FailsOnce(LocalRunnerClient):
        failed = False

        async def predict(self, rows, version, kind):
            if not self.failed and rows.shape[0] < 64:  # the second chunk of the first batch
                FailsOnce.failed = True
                raise TimeoutError
            return await super().predict(rows, version, kind)

    client.core.predictor.runners["mechanical"] = FailsOnce(runner_cores["mechanical"])
    text = "\n".join([CSV_HEADER, *(csv_line(i) for i in range(100))])
    out = io.StringIO()
    summary = screen_csv(armor, "mechanical", io.StringIO(text), out, batch_rows=100)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert FailsOnce.failed
    assert [r["row"] for r in rows] == [str(i) for i in range(100)] and {r["status"] for r in rows} == {"200"}
    assert summary.predicted == 100


def test_unreachable_service_exits_2_with_a_clear_message(tmp_path, capsys):
    source = tmp_path / "in.csv"
    source.write_text(CSV_HEADER + "\n" + csv_line(0) + "\n")
    url = f"http://127.0.0.1:{free_port()}"
    status = main(["--url", url, "--retries", "1", "screen", str(source), "--family", "mechanical", "--no-progress"])
    assert status == 2
    assert f"cannot reach the service at {url}" in capsys.readouterr().err
    with pytest.raises(ServiceUnreachable):
        ArmorClient(url, retries=0).status()


@pytest.mark.parametrize("command", [["status"], ["screen", "in.csv", "--family", "mechanical"]])
def test_global_options_go_before_or_after_the_sub_command(command):
    options = ["--url", "http://a:1", "--retries", "2", "--api-key", "k"]
    before, after = _parser().parse_args([*options, *command]), _parser().parse_args([*command, *options])
    for args in (before, after):
        assert (args.url, args.retries, args.api_key) == ("http://a:1", 2, "k")
    default = _parser().parse_args(command)
    assert (default.url, default.retries, default.api_key) == ("http://127.0.0.1:3000", 5, None)
    mixed = _parser().parse_args(["--url", "http://a:1", *command, "--retries", "3"])
    assert (mixed.url, mixed.retries) == ("http://a:1", 3)


def test_unreachable_service_exits_2_with_the_url_given_after_the_sub_command(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["status", "--url", url, "--retries", "0"]) == 2
    assert f"cannot reach the service at {url}" in capsys.readouterr().err


@pytest.fixture
def keyed_main(make_core, monkeypatch, tmp_path):
    """main() against an in-process app that asks for API key "k1"; returns (run, input path)."""
    from functools import partial

    import client.__main__ as cli
    from settings import AccessSettings
    from tests.test_api_transport_access import app_with

    http = app_with(make_core, AccessSettings(frozenset({"k1"})))
    monkeypatch.setattr(cli, "ArmorClient", partial(ArmorClient, transport=http._transport, sleep=lambda s: None))
    monkeypatch.delenv("ARMOR_API_KEY", raising=False)
    source = tmp_path / "in.csv"
    source.write_text(CSV_HEADER + "\n" + csv_line(0) + "\n")
    base = ["--url", "http://testserver", "screen", str(source), "--family", "mechanical", "--no-progress"]
    with http:
        yield lambda *extra: main([*base, *extra])


def test_the_api_key_comes_from_the_option_or_the_environment(keyed_main, monkeypatch, capsys):
    assert keyed_main() == 1
    assert "401" in capsys.readouterr().err
    assert keyed_main("--api-key", "k1") == 0
    assert ",200," in capsys.readouterr().out
    monkeypatch.setenv("ARMOR_API_KEY", "k1")
    assert keyed_main() == 0
    assert keyed_main("--api-key", "wrong") == 1  # the option wins over the environment


def number_cells(text: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    numbers = slice(header.index("status") + 1, header.index("warnings"))
    return [cell for row in rows[1:] for cell in row[numbers] if cell]


def test_values_are_written_to_the_stated_significant_figures(armor):
    text = "\n".join([CSV_HEADER, *(csv_line(i) for i in range(4))])
    written = {}
    for digits in (0, 3, DEFAULT_DIGITS):
        out = io.StringIO()
        screen_csv(armor, "ballistic", io.StringIO(text), out, digits=digits)
        written[digits] = number_cells(out.getvalue())
    full = written[0]
    assert len(full) >= 4 * 3 * 4  # 4 rows, 4 ballistic targets with value and bounds (and the build's numbers)
    assert max(len(c.replace(".", "").lstrip("0")) for c in full) > DEFAULT_DIGITS  # the service's repr
    for digits in (3, DEFAULT_DIGITS):
        assert written[digits] == [f"{float(c):.{digits}g}" for c in full]


def test_the_cli_writes_6_significant_figures_unless_told(armor, client, monkeypatch, tmp_path):
    from functools import partial

    import client.__main__ as cli

    monkeypatch.setattr(cli, "ArmorClient", partial(ArmorClient, transport=client._transport, sleep=lambda s: None))
    source = tmp_path / "in.csv"
    source.write_text("\n".join([CSV_HEADER, *(csv_line(i) for i in range(3))]))
    written = {}
    for name, extra in {"default": [], "full": ["--full-precision"], "zero": ["--digits", "0"]}.items():
        out = tmp_path / f"{name}.csv"
        command = ["screen", str(source), "--family", "mechanical", "--no-progress", "-o", str(out), *extra]
        assert main([*command, "--url", "http://testserver"]) == 0
        written[name] = number_cells(out.read_text())
    assert written["full"] == written["zero"] != written["default"]
    assert written["default"] == [f"{float(c):.6g}" for c in written["full"]]


HOSTILE_IDS = ['=HYPERLINK("http://x")', "+1+cmd", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)", "\t=1", "\r=1", "ok"]


def test_formula_like_cells_are_written_inert_unless_turned_off(armor):
    lines = ["sample," + CSV_HEADER] + [f"{csv_cell(s)}," + csv_line(i) for i, s in enumerate([*HOSTILE_IDS, "-5"])]
    written = {}
    for escape in (True, False):
        out = io.StringIO()
        screen_csv(armor, "mechanical", io.StringIO("\n".join(lines)), out, id_column="sample", escape_formulas=escape)
        written[escape] = [row["sample"] for row in csv.DictReader(io.StringIO(out.getvalue()))]
    assert written[False] == [*HOSTILE_IDS, "-5"]
    assert written[True] == [*("'" + s for s in HOSTILE_IDS[:-1]), "ok", "-5"]  # a plain number is no formula


def csv_cell(text: str) -> str:
    """``text`` as one CSV cell."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="", quoting=csv.QUOTE_ALL).writerow([text])
    return buffer.getvalue()


def test_negative_digits_are_refused_naming_the_option(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["screen", "in.csv", "--family", "mechanical", "--digits", "-1"])
    assert "--digits: must be 0 (full precision) or more, got -1" in capsys.readouterr().err


def test_the_log_command_pages_through_the_prediction_log(make_core, tmp_path, monkeypatch, capsys):
    """`python -m client log` against an in-process app with the log on: every row once, across
    pages, as JSON lines or CSV, with the admin token."""
    from functools import partial

    import client.__main__ as cli
    from tests.test_api_transport_log_routes import logged_client

    with logged_client(make_core, tmp_path, admin_token="s3cret") as http:
        for formula in ("SiC", "B4C", "TiB2"):
            http.post("/api/v1/predict/hardness", json={"formula": formula})
        monkeypatch.setattr(cli, "ArmorClient", partial(ArmorClient, transport=http._transport, sleep=lambda s: None))
        base = ["log", "--url", "http://testserver", "--limit", "2", "--admin-token", "s3cret"]
        assert main(base) == 0
        lines = capsys.readouterr().out.splitlines()
        assert main([*base, "--format", "csv", "--max-rows", "2"]) == 0
        table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
        assert main(["log", "--url", "http://testserver"]) == 1  # no token: refused
    import json

    assert [json.loads(line)["family"] for line in lines] == ["hardness"] * 3
    assert len({json.loads(line)["id"] for line in lines}) == 3
    assert [row["id"] for row in table] == [str(json.loads(line)["id"]) for line in lines[:2]]
