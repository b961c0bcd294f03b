"""manifests/monitoring: the alert rules pass promtool's checks and unit tests, the Operator wrapper and the
ConfigMaps carry the same rules, and the dashboard is importable with its datasource as a variable.

`python -m tests.unit.test_monitoring` prints prometheusrule.yaml regenerated from pmws-rules.yaml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "manifests" / "monitoring"
RULES = MONITORING / "pmws-rules.yaml"
DASHBOARD = MONITORING / "pmws-dashboard.json"
PROMETHEUS_RULE = MONITORING / "prometheusrule.yaml"

PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
PROMQL_WORDS |= {"offset", "inf", "nan", "e"}


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers that are not functions, keywords, labels or numbers."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals (label values, regexes)
    text = re.sub(r"\{[^}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # ranges and subqueries
    text = re.sub(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # label lists
    text = re.sub(r"\$\w+|\$\{\w+\}", " ", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(?=\s*(\S?))", text):
        name, following = match.group(1), match.group(2)
        if following == "(" or name.lower() in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def used_metric_names() -> set[str]:
    return set().union(*map(metric_names, rule_expressions() + dashboard_expressions()))


def prometheus_rule_text() -> str:
    """prometheusrule.yaml: the Operator's wrapper around pmws-rules.yaml's groups."""
    header = "".join(line + "\n" for line in PROMETHEUS_RULE.read_text().splitlines() if line.startswith("#"))
    document = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "orderbooks-ws-recorder",
            "labels": {"app.kubernetes.io/name": "orderbooks-ws-recorder"},
        },
        "spec": yaml.safe_load(RULES.read_text()),
    }
    return header + yaml.safe_dump(document, sort_keys=False, width=200)


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail("promtool is missing in CI (.ci/run installs Debian's prometheus package)")
        pytest.skip("promtool not installed (apt-get install prometheus); CI runs these")
    return found


def test_metric_names_are_parsed_out_of_promql() -> None:
    expr = (
        'sum by (instance) (rate(pmws_frames_total{instance=~"$instance", a="b c"}[$__rate_interval]))'
        " / on(job) group_left(x) pmws_up_gauge > 0.5 and absent(up) or kubelet_x[6h] * 2e3"
    )
    assert metric_names(expr) == {"pmws_frames_total", "pmws_up_gauge", "up", "kubelet_x"}


def test_promtool_checks_the_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_every_alert() -> None:
    tests = MONITORING / "pmws-rules.test.yaml"
    result = subprocess.run(
        [promtool(), "test", "rules", tests.name], capture_output=True, text=True, cwd=MONITORING
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        case["alertname"] for t in yaml.safe_load(tests.read_text())["tests"] for case in t["alert_rule_test"]
    }
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert alerts <= tested, f"alerts without a promtool test: {sorted(alerts - tested)}"


def test_operator_wrapper_has_the_same_rules() -> None:
    wrapper = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert wrapper["kind"] == "PrometheusRule"
    assert wrapper["spec"] == yaml.safe_load(RULES.read_text())
    assert PROMETHEUS_RULE.read_text() == prometheus_rule_text()


def test_configmaps_carry_the_files_unchanged() -> None:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    shipped = {name for g in kustomization["configMapGenerator"] for name in g["files"]}
    assert shipped == {RULES.name, DASHBOARD.name}
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return  # the file list above is what matters; kubectl only proves kustomize accepts it
    rendered = subprocess.run(
        [kubectl, "kustomize", str(MONITORING)], capture_output=True, text=True, check=True
    )
    data: dict[str, Any] = {}
    for doc in yaml.safe_load_all(rendered.stdout):
        data |= doc["data"]
    assert data == {RULES.name: RULES.read_text(), DASHBOARD.name: DASHBOARD.read_text()}


def test_dashboard_is_importable_with_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert "id" not in dashboard or dashboard["id"] is None  # import creates it
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


if __name__ == "__main__":
    print(prometheus_rule_text(), end="")
