"""The shipped example configs list every key, with its default (one source of truth with config.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pmws.config import Config, load_config, read_yaml

ROOT = Path(__file__).resolve().parents[2]


def keys_of(obj: object, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out |= keys_of(value, f"{prefix}{f.name}.")
        else:
            out.add(f"{prefix}{f.name}")
    return out


def flatten(data: dict, prefix: str = "") -> set[str]:
    return {f"{prefix}{k}.{kk}" for k, v in data.items() for kk in v}


def test_runtime_example_has_every_key_and_the_defaults() -> None:
    path = ROOT / "config/polymarket_ws_runtime.example.yaml"
    assert flatten(read_yaml(path)) == keys_of(Config())
    loaded = load_config(path, env={})
    expected = Config()
    # the server's paths on its volume, as in manifests/base/recorder-config.yaml
    expected.run.output_dir = expected.upload.source = "/var/lib/orderbooks/raw_orderbooks/polymarket"
    expected.run.manifest_dir = expected.upload.manifest_dir = "/var/lib/orderbooks/manifests"
    expected.upload.ledger_path = "/var/lib/orderbooks/upload_ledger.jsonl"
    assert loaded == expected


def test_sample_example_has_every_sample_key_and_the_defaults() -> None:
    path = ROOT / "config/polymarket_ws_sample.example.yaml"
    assert flatten(read_yaml(path)) == {
        k for k in keys_of(Config()) if not k.startswith(("run.", "metrics.", "upload."))
    }
    assert load_config(path, env={}) == Config()
