"""Every path a command takes, fed garbage: one stderr line and an exit code, never a traceback."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pmws.cli import app

KINDS = ("missing", "empty", "binary", "gzip", "directory")


def garbage(tmp_path: Path, kind: str) -> Path:
    """A path of the given kind: absent, an empty file, random bytes, a gzip file, a directory."""
    path = tmp_path / f"garbage-{kind}"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "binary":
        path.write_bytes(bytes(range(128, 256)) * 4)
    elif kind == "gzip":
        path.write_bytes(gzip.compress(b'{"a": 1}\n'))
    elif kind == "directory":
        path.mkdir()
    return path


def assert_one_line(args: list[str], code: int) -> None:
    result = CliRunner().invoke(app, args)
    shown = f"{args}\n{result.output}\n{result.exception!r}"
    assert result.exit_code == code, shown
    assert isinstance(result.exception, SystemExit | None), shown
    lines = [x for x in result.stderr.splitlines() if x and not x.startswith("simulator: ")]
    assert len(lines) == 1, shown
    assert "Traceback" not in result.output, shown


COMMANDS = ["discover", "sample", "gate", "run", "upload", "verify", "simulate"]


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "empty"])  # an empty YAML file is no keys
@pytest.mark.parametrize("command", COMMANDS)
def test_config(tmp_path: Path, command: str, kind: str) -> None:
    assert_one_line([command, "--config", str(garbage(tmp_path, kind))], 2)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("args", [["gate", "--manifest"], ["verify", "--manifest"]])
def test_sample_manifest(tmp_path: Path, args: list[str], kind: str) -> None:
    assert_one_line([*args, str(garbage(tmp_path, kind))], 1)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "directory"])  # a directory: verify DIR
def test_verify_paths(tmp_path: Path, kind: str) -> None:
    assert_one_line(["verify", str(garbage(tmp_path, kind))], 1)


@pytest.mark.parametrize("kind", KINDS)
def test_verify_manifest_dir(tmp_path: Path, kind: str) -> None:
    path = garbage(tmp_path, kind)
    if kind == "directory":  # holding a garbage manifest
        (path / "x.jsonl.gz.manifest.json").write_bytes(bytes(range(128, 256)))
    assert_one_line(["verify", "--manifest-dir", str(path)], 1)


@pytest.mark.parametrize("kind", KINDS)
def test_a_garbage_manifest_in_the_default_manifest_dir(kind: str) -> None:
    manifests = Path("raw_orderbooks/manifests")
    manifests.mkdir(parents=True)
    if kind != "missing":  # missing: an empty manifest directory
        garbage(manifests, kind).rename(manifests / "x.jsonl.gz.manifest.json")
    assert_one_line(["verify"], 1)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "directory"])
def test_upload_source(tmp_path: Path, kind: str) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    assert_one_line(["upload", "--remote", str(remote), "--source", str(garbage(tmp_path, kind))], 1)


@pytest.mark.parametrize("kind", ["empty", "binary", "gzip", "directory"])
def test_discovery_file(kind: str) -> None:
    target = Path("data/discovery/polymarket_btc_markets_latest.json")
    target.parent.mkdir(parents=True)
    garbage(target.parent, kind).rename(target)
    assert_one_line(["sample", "--no-live"], 1)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("option", ["--tls-cert", "--tls-key"])
def test_simulate_tls_files(tmp_path: Path, option: str, kind: str) -> None:
    path = str(garbage(tmp_path, kind))
    assert_one_line(["simulate", "--tls-cert", path, "--tls-key", path], 2)


def test_simulate_write_config_into_a_directory(tmp_path: Path) -> None:
    assert_one_line(["simulate", "--write-config", str(garbage(tmp_path, "directory"))], 1)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("option", ["--port", "--ws-port"])
def test_simulate_on_a_busy_port(busy_port: int, option: str) -> None:
    assert_one_line(["simulate", option, str(busy_port)], 2)


def test_discover_output_dir_is_a_file(tmp_path: Path) -> None:
    assert_one_line(["discover", "--simulate", "--output-dir", str(garbage(tmp_path, "binary"))], 1)
