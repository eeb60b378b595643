"""client/: ArmorClient and the screen command against the in-process app, retries on 503 and
refused connections, and the exit status when the service cannot be reached."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from client import ArmorClient, ServiceError, ServiceUnreachable, screen_csv
from client.__main__ import main
from tests.support import free_port
from tests.test_api_batch_flow import CSV_HEADER, csv_line, material


@pytest.fixture
def armor(client) -> ArmorClient:
    """An ArmorClient whose requests go to the in-process app of the ``client`` fixture."""
    return ArmorClient("http://testserver", transport=client._transport, sleep=lambda s: None)


def test_predict_many_yields_every_row_in_order_across_batches(armor, client):
    materials = [material(i) for i in range(7)] + [{"composition": {"SiC": 2.0}}] + [material(9)]
    results = list(armor.predict_many("mechanical", materials, batch_rows=4))
    assert [r["row"] for r in results] == list(range(9))
    assert results[7]["error"]["details"][0]["field"] == "composition.SiC"
    single = armor.predict("mechanical", material(9), include_feature_importance=False)
    assert results[8]["predictions"] == single["predictions"]
    assert armor.status()["status"] == "ok"


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
