"""deploy/k8s: both overlays render with `kubectl kustomize`, every object validates against the
Kubernetes schemas (kubernetes-validate, strict), and checkov finds no failed check that is not
written down with its reason in deploy/k8s/checkov-skips.yaml.

checkov and kubernetes-validate live in their own venv (deploy/k8s/requirements-tools.txt; checkov
pins packages older than the service's lock), which `make test` creates as .venv-tools; they are
looked up in $ARMOR_K8S_TOOLS (if set), then .venv-tools/bin, then PATH. kubectl is a system package
(group "k8s" of tests/requirements.py: skipped outside CI when missing, a failure in CI).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.requirements import require_binary

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.30.0"  # oldest minor still supported upstream when this was written
TOOLS_DIRS = tuple(Path(d) for d in (os.environ.get("ARMOR_K8S_TOOLS"), REPO / ".venv-tools" / "bin") if d)
ENABLE = {
    "kubectl": "apt-get install -y kubernetes-client",
    "checkov": "make tools",
    "kubernetes-validate": "make tools",
}


def tool(name: str) -> str:
    return require_binary(name, group="k8s", enable=ENABLE[name], search=TOOLS_DIRS)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    kubectl = tool("kubectl")
    out = tmp_path_factory.mktemp("k8s")
    files = {}
    for overlay in OVERLAYS:
        text = subprocess.run(
            [kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True, check=True
        ).stdout
        files[overlay] = out / f"{overlay}.yaml"
        files[overlay].write_text(text)
    return files


def objects(path: Path) -> dict[tuple[str, str], dict]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in yaml.safe_load_all(path.read_text()) if doc}


def test_dev_is_one_replica_without_autoscaler(rendered: dict[str, Path]) -> None:
    dev = objects(rendered["dev"])
    assert dev[("Deployment", "ceramic-armor")]["spec"]["replicas"] == 1
    assert not [key for key in dev if key[0] == "HorizontalPodAutoscaler"]
    assert {doc["metadata"]["namespace"] for doc in dev.values() if doc["kind"] != "Namespace"} == {"ceramic-armor-dev"}


def test_prod_has_replicas_autoscaler_budget_and_anti_affinity(rendered: dict[str, Path]) -> None:
    prod = objects(rendered["prod"])
    deployment = prod[("Deployment", "ceramic-armor")]
    assert deployment["spec"]["replicas"] >= 3
    assert prod[("HorizontalPodAutoscaler", "ceramic-armor")]["spec"]["minReplicas"] >= 3
    assert prod[("PodDisruptionBudget", "ceramic-armor")]["spec"]["maxUnavailable"] == 1
    assert deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]


def test_pod_is_locked_down_and_points_at_redis(rendered: dict[str, Path]) -> None:
    for overlay in OVERLAYS:
        docs = objects(rendered[overlay])
        pod = docs[("Deployment", "ceramic-armor")]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert pod["automountServiceAccountToken"] is False
        assert pod["enableServiceLinks"] is False  # else a Service named "armor" sets ARMOR_PORT
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert {"/tmp", env["BENTOML_HOME"]} <= mounts
        config = docs[("ConfigMap", "ceramic-armor-config")]["data"]
        assert config["CACHE_BACKEND"] == "redis"
        assert config["REDIS_URL"].startswith("redis://ceramic-armor-redis:")
        assert "PORT" not in config  # the image's entrypoint would turn it into BENTOML_PORT
        redis_args = docs[("Deployment", "ceramic-armor-redis")]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert redis_args[redis_args.index("--maxmemory-policy") + 1] == "allkeys-lru"


def test_every_object_validates_against_the_kubernetes_schemas(rendered: dict[str, Path]) -> None:
    validate = tool("kubernetes-validate")
    result = subprocess.run(
        [validate, "--strict", "--no-warn", "-k", KUBERNETES_VERSION, *map(str, rendered.values())],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    validated = result.stdout.count("INFO")
    assert validated == sum(len(objects(path)) for path in rendered.values()), result.stdout


def test_checkov_has_no_failed_check_without_a_written_reason(rendered: dict[str, Path]) -> None:
    checkov = tool("checkov")
    skips = {
        entry["id"]: entry["reason"] for entry in yaml.safe_load((K8S / "checkov-skips.yaml").read_text())["skips"]
    }
    assert all(reason.strip() for reason in skips.values())
    result = subprocess.run(
        [checkov, "--directory", str(next(iter(rendered.values())).parent), "--framework", "kubernetes",
         "--output", "json", "--quiet", "--compact", "--skip-download"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr  # 1: some check failed
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = {(c["check_id"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]}
    passed = sum(r["summary"]["passed"] for r in reports)
    unexplained = sorted(f"{check} {resource}" for check, resource in failed if check not in skips)
    assert not unexplained, "failed checkov checks with no reason in deploy/k8s/checkov-skips.yaml:\n" + "\n".join(
        unexplained
    )
    stale = set(skips) - {check for check, _ in failed}
    assert not stale, f"checkov-skips.yaml lists checks that no longer fail: {sorted(stale)}"
    assert passed > 50  # the scan really ran over both overlays


def test_termination_grace_covers_the_drain_and_probes_outwait_the_readiness_check(rendered: dict[str, Path]) -> None:
    for overlay in OVERLAYS:
        docs = objects(rendered[overlay])
        pod = docs[("Deployment", "ceramic-armor")]["spec"]["template"]["spec"]
        config = docs[("ConfigMap", "ceramic-armor-config")]["data"]
        drain_s = float(config["SHUTDOWN_GRACE_S"]) + float(config["SHUTDOWN_TIMEOUT_S"])
        assert pod["terminationGracePeriodSeconds"] >= drain_s + 5  # the runner and the arbiter stop after
        container = pod["containers"][0]
        assert "preStop" not in container.get("lifecycle", {})  # the service's own grace period replaces it
        readiness = container["readinessProbe"]
        assert float(config["READINESS_CHECK_S"]) < readiness["timeoutSeconds"]
        # out of the Service's endpoints before the listener closes
        assert readiness["periodSeconds"] * readiness["failureThreshold"] < float(config["SHUTDOWN_GRACE_S"])
