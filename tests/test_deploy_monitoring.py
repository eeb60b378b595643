"""deploy/k8s/monitoring: the alert rules ask for series and labels the service exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from monitoring.metrics import Metrics

MONITORING = Path(__file__).resolve().parent.parent / "deploy" / "k8s" / "monitoring"


def _exported() -> dict[str, set[str]]:
    """Every armor_* series name (with the histogram's suffixes) and its labels."""
    names: dict[str, set[str]] = {}
    for attribute in vars(Metrics(CollectorRegistry())).values():
        labels = set(getattr(attribute, "_labelnames", ()))
        name = getattr(attribute, "_name", None)
        if name:
            for suffix in ("", "_total", "_bucket", "_count", "_sum"):
                names[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def _rules() -> list[dict]:
    document = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def test_every_armor_series_in_a_rule_is_exported_with_its_labels():
    exported = _exported()
    used = 0
    for rule in _rules():
        for name, selector in re.findall(r"(armor_\w+)(?:\{([^}]*)\})?", rule["expr"]):
            assert name in exported, (rule["alert"], name)
            labels = set(re.findall(r"(\w+)\s*=", selector))
            assert labels <= exported[name], (rule["alert"], name, labels - exported[name])
            used += 1
        for grouped in re.findall(r"by \(([^)]*)\)", rule["expr"]):
            names = re.findall(r"armor_\w+", rule["expr"])
            if names:
                labels = {label.strip() for label in grouped.split(",")}
                assert any(labels <= exported[n] | {"le"} for n in names), (rule["alert"], labels)
    assert used >= 4


def test_the_service_monitor_scrapes_the_services_named_port():
    monitor = yaml.safe_load((MONITORING / "servicemonitor.yaml").read_text())
    service = yaml.safe_load((MONITORING.parent / "base" / "service.yaml").read_text())
    assert monitor["spec"]["endpoints"][0]["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
