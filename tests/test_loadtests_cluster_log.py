"""loadtests/cluster_log.py and the pieces of loadtests/cluster.py and log_faults.py it relies on:
the rows of the shared log counted per serving instance, cluster.sh's environment for a restart,
and the service's counts summed over the instances."""

from __future__ import annotations

from pathlib import Path

import httpx

from loadtests import log_faults
from loadtests.cluster import Cluster
from loadtests.cluster_log import Sent, rows_per_instance

CLUSTER_ENV = {
    "CLUSTER_DIR": "/tmp/c",
    "CLUSTER_SRC": "/src/tree",
    "CLUSTER_PORT": "8180",
    "CLUSTER_STATS_PORT": "8504",
    "CLUSTER_REDIS_PORT": "6490",
    "INSTANCE1_PORT": "3201",
    "INSTANCE2_PORT": "3202",
    "INSTANCE3_PORT": "3203",
}


def test_rows_are_counted_per_instance_that_served_them_and_gaps_and_repeats_are_found() -> None:
    sent = Sent(served_by={"a": "i1", "b": "i2", "c": "i3", "d": "i1"})
    found = rows_per_instance(sent, ["a", "b", "b", "c", "x"])
    assert found == {
        "rows": 5,
        "rows_by_instance": {"i1": 1, "i2": 2, "i3": 1, "not sent here": 1},
        "answers_missing": 1,  # d
        "rows_twice": 1,  # b
    }


def test_a_restart_by_script_keeps_the_ports_and_tree_the_cluster_was_started_with() -> None:
    cluster = Cluster(Path("/tmp/c"), dict(CLUSTER_ENV))
    caller = {"PATH": "/bin", "CLUSTER_PORT": "8080", "CLUSTER_SRC": "/elsewhere", "DATABASE_URL": "postgresql://h/d"}
    env = cluster.script_env(caller, PREDICTIVE_WARMUP_TOP="0")
    assert env["CLUSTER_BASE_PORT"] == "3201"
    assert (env["CLUSTER_PORT"], env["CLUSTER_REDIS_PORT"], env["CLUSTER_SRC"]) == ("8180", "6490", "/src/tree")
    assert (env["DATABASE_URL"], env["PREDICTIVE_WARMUP_TOP"], env["PATH"]) == ("postgresql://h/d", "0", "/bin")
    assert "INSTANCE2_PORT" not in env  # cluster.sh derives them from CLUSTER_BASE_PORT


def test_the_log_figures_of_the_instances_are_summed(monkeypatch) -> None:
    figures = {
        "http://i1": {"written_total": 10, "dropped_total": {"database": 2, "queue_full": 0}, "last_error": None},
        "http://i2": {"written_total": 5, "dropped_total": {"database": 1, "queue_full": 3}, "last_error": "OSError"},
    }

    def get(url: str, timeout: float) -> httpx.Response:
        return httpx.Response(200, json={"prediction_log": figures[url.removesuffix("/api/v1/performance")]})

    monkeypatch.setattr(log_faults.httpx, "get", get)
    assert log_faults.log_figures(list(figures)) == {
        "written_total": 15,
        "dropped_total": {"database": 3, "queue_full": 3},
        "last_error": [None, "OSError"],
    }
