"""Every config key has a rule; a value outside it is refused by load_config with one line and exit 2.

Walks the Config dataclasses, so a new key without a rule in `pmws.config.RULES` fails here.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from pmws.cli import app
from pmws.config import RULES, Config
from pmws.rules import Between, Flag, OneOf, Text, Url


def all_keys() -> list[tuple[str, Any]]:
    """(dotted key, type hint) for every field of every section."""
    keys = []
    for section in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[section.name]
        hints = typing.get_type_hints(cls)
        keys += [(f"{section.name}.{f.name}", hints[f.name]) for f in dataclasses.fields(cls)]
    return keys


def bad_values(key: str, hint: Any) -> list[Any]:
    """Values the key's rule must refuse, plus a value of the wrong type."""
    rule = RULES[key]
    wrong_type: list[Any] = [{"not": "a value"}]
    if isinstance(rule, Between):
        if hint is int:
            return [int(rule.low) - 1, int(rule.high) + 1, *wrong_type]
        below = rule.low / 2 if rule.low > 0 else rule.low - 1
        return [below, rule.high * 2, "nan", *wrong_type]
    if isinstance(rule, OneOf):
        return [["nope"], [], *wrong_type] if hint == list[str] else ["nope", *wrong_type]
    if isinstance(rule, Url):
        other = "ftp" if "ws" in rule.schemes else "ws"
        return [f"{other}://example.com/x", f"{rule.schemes[0]}://", "example.com", *wrong_type]
    if isinstance(rule, Text):
        return ["two\nlines", *([] if rule.optional else [""]), *wrong_type]
    assert isinstance(rule, Flag)
    return ["maybe", *wrong_type]


def test_every_key_has_a_rule() -> None:
    missing = [key for key, _ in all_keys() if key not in RULES]
    assert not missing, f"give these keys a rule in pmws.config.RULES: {missing}"


def test_the_defaults_keep_every_rule() -> None:
    default = Config()
    for key, _ in all_keys():
        section, name = key.split(".")
        assert RULES[key].problem(getattr(getattr(default, section), name)) is None, key


CASES = [(key, value) for key, hint in all_keys() if key in RULES for value in bad_values(key, hint)]


@pytest.mark.parametrize(("key", "value"), CASES, ids=[f"{k}={v!r}" for k, v in CASES])
def test_a_bad_value_is_one_line_naming_the_key(tmp_path: Path, key: str, value: Any) -> None:
    section, name = key.split(".")
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({section: {name: value}}))
    result = CliRunner().invoke(app, ["discover", "--config", str(config)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"'{key}'" in lines[0], result.stderr
    assert str(config) in lines[0]
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sample", "--market-limit", "-1"], "'sample.market_limit' must be between 1 and 250, got -1"),
        (["sample", "--market-limit", "0"], "'sample.market_limit' must be between 1 and 250, got 0"),
        (
            ["sample", "--rest-checkpoint-interval-seconds", "0"],
            "'sample.rest_checkpoint_interval_seconds' must be between 1 and",
        ),
        (["run", "--shard-index", "2", "--shard-count", "2"], "run.shard_index 2 must be in 0..1"),
        (["run", "--shard-count", "0"], "'run.shard_count' must be between 1 and 1000"),
        (["upload", "--verify-mode", "sha1"], "'upload.verify_mode' must be one of auto, sha256"),
        (["verify", "--verify-mode", "sha1"], "'upload.verify_mode' must be one of auto, sha256"),
    ],
)
def test_bad_flags_are_refused_before_anything_runs(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, [*args, "--simulate"] if args[0] in ("sample", "run") else args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "simulator:" not in result.output  # refused before the simulator started
    assert not any(Path().iterdir())


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("websocket:\n  ping_interval_seconds: -5\n", "'websocket.ping_interval_seconds' must be between"),
        ("websocket:\n  ping_interval_seconds: 20\n  pong_timeout_seconds: 10\n", "must be longer than"),
        ("run:\n  output_dir: /x\nrun:\n  shard_count: 2\n", "'run' is given twice (again at line 3)"),
        ("run:\n  shard_count: 2\n  shard_count: 3\n", "'shard_count' is given twice"),
        ("endpoints:\n  gamma_url: http://127.0.0.1:99999\n", "a port in 1..65535"),
        ("endpoints:\n  ws_url: 'ws://exa mple.com/ws'\n", "no spaces"),
        ("archive:\n  compresslevel: 42\n", "'archive.compresslevel' must be between 0 and 9, got 42"),
        ("metrics:\n  port: 99999\n", "'metrics.port' must be between 0 and 65535, got 99999"),
        ("endpoints:\n  ws_url: http://127.0.0.1:1/ws\n", "'endpoints.ws_url' must be a ws:// or wss://"),
        ("discovery:\n  windows: [5m, 2h]\n", "'discovery.windows' must be a list of one of 5m, 15m"),
    ],
)
def test_reported_values_fail_in_load_config(tmp_path: Path, yaml_text: str, message: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--no-live"])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["c.yaml"]


def test_readme_and_example_configs_document_every_range() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    runtime = (root / "config/polymarket_ws_runtime.example.yaml").read_text().splitlines()
    # shard_index: documented as 0 .. shard_count - 1; batch_size, shutdown_timeout_seconds: README only
    undocumented_in_example = {"run.shard_index", "rest.batch_size", "run.shutdown_timeout_seconds"}
    for key, rule in RULES.items():
        if not isinstance(rule, Between):
            continue
        section, name = key.split(".")
        assert f"`{name}` {rule.describe()}" in readme.split(f"| `{section}` |")[1].split("\n")[0], key
        if key not in undocumented_in_example:
            line = next(x for x in runtime if x.startswith(f"  {name}: "))
            assert rule.describe().replace("–", " .. ") in line, key
