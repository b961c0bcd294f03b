"""Every metric the alert rules and the dashboard query is one a real `pmws run` exports."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TIME_FACTOR
from tests.e2e.test_run import record, run_config
from tests.unit.test_monitoring import used_metric_names

# Scraped by Prometheus itself or from the kubelet, not from pmws.
EXTERNAL = {"up", "kubelet_volume_stats_available_bytes", "kubelet_volume_stats_capacity_bytes"}


def scrape(tmp_path: Path, sim: Any) -> dict[str, list[Any]]:
    """Samples by name from /metrics of a short run that rotates its files every second."""
    found: dict[str, str] = {}

    def probe(holder: dict[str, Any]) -> None:
        time.sleep(2.5 * TIME_FACTOR)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{holder['server'].port}/metrics", timeout=5 * TIME_FACTOR
        ) as response:
            found["text"] = response.read().decode()

    config = run_config(
        tmp_path,
        sim,
        run={"rotate_interval_seconds": 1},
        upload={"source": "rec", "ledger_path": str(tmp_path / "ledger.jsonl")},
    )
    record(config, 3.5, during=probe, sim=sim)
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(found["text"]):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def test_rules_and_dashboard_use_only_exported_names(tmp_path: Path, sim: Any) -> None:
    samples = scrape(tmp_path, sim)
    exported = set(samples)
    missing = used_metric_names() - EXTERNAL - exported
    assert not missing, f"queried but not exported: {sorted(missing)}"
    # The volume metrics this branch added carry real values: files rotated, none uploaded yet.
    closed = {s.labels["kind"]: s.value for s in samples["pmws_archive_closed_bytes_total"]}
    assert closed["ws_raw"] > 0
    (backlog,) = samples["pmws_upload_backlog_files"]
    assert backlog.value >= 1
    (unreadable,) = samples["pmws_upload_ledger_unreadable"]
    assert unreadable.value == 0
