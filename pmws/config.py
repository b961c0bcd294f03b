"""One config for every command: defaults < YAML file < `PMWS_SECTION__KEY` env vars < CLI flags.

Every key is a dataclass field below; the example files in `config/` list them all with their defaults.
Unknown keys and wrong types raise `ConfigError` naming the source (file or env var) and the dotted key.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pmws.errors import ConfigError
from pmws.rules import Between, Flag, OneOf, Rule, Text, Url

ENV_PREFIX = "PMWS_"


@dataclass
class Endpoints:
    """Where Polymarket lives (or the simulator stands in)."""

    gamma_url: str = "https://gamma-api.polymarket.com"
    clob_url: str = "https://clob.polymarket.com"
    ws_url: str = "wss://ws-subscriptions-clob.polymarket.com/ws/market"


@dataclass
class Discovery:
    """Gamma discovery of BTC up/down markets (PROTOCOL.md §6)."""

    output_dir: str = "data/discovery"
    windows: list[str] = field(default_factory=lambda: ["5m", "15m", "1h", "4h"])
    lookahead_seconds: int = 86400
    page_limit: int = 100
    max_pages: int = 100
    request_timeout_seconds: float = 10.0


@dataclass
class Websocket:
    """The market-channel connection (PROTOCOL.md §2)."""

    ping_interval_seconds: float = 10.0
    pong_timeout_seconds: float = 30.0
    stale_after_seconds: float = 60.0
    resubscribe_timeout_seconds: float = 30.0  # a blind token's resubscribe must bring a book by then
    open_timeout_seconds: float = 10.0
    max_assets_per_connection: int = 200
    custom_feature_enabled: bool = True
    reconnect_initial_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    max_frame_bytes: int = 64 * 1024 * 1024
    user_agent: str = "pmws/0.1 (+market-data recorder)"
    read_batch_ms: float = 0.0
    handoff_batch_ms: float = 100.0  # frames stamped at read, enveloped together (feed.Intake)


@dataclass
class Rest:
    """REST `/books` checkpoints (PROTOCOL.md §4)."""

    timeout_seconds: float = 10.0
    max_attempts: int = 3
    retry_max_seconds: float = 30.0
    batch_size: int = 500


@dataclass
class Sample:
    """`pmws sample`: the bounded checkpoint-010b sample."""

    market_limit: int = 2
    duration_seconds: float = 60.0
    rest_checkpoint_interval_seconds: float = 15.0
    output_dir: str = "data/ws_sample/polymarket"
    manifest_path: str = "data/manifests/checkpoint_010b_ws_raw_sample.json"
    report_path: str = "reports/checkpoints/checkpoint_010b_ws_raw_sample.md"
    live_refresh_seconds: float = 5.0  # plain status line cadence off a terminal


@dataclass
class Archive:
    """How raw gzip JSONL is written."""

    flush_interval_seconds: float = 1.0
    compresslevel: int = 7  # zlib-ng: smaller than zlib's level 6 at about half its CPU
    max_buffered_bytes: int = 64 * 1024 * 1024


@dataclass
class Run:
    """`pmws run`: the long-running recorder (orderbooks-ws-recorder)."""

    output_dir: str = "raw_orderbooks/polymarket"
    manifest_dir: str = "raw_orderbooks/manifests"
    rotate_interval_seconds: int = 3600
    rediscover_interval_seconds: float = 60.0
    subscribe_ahead_seconds: int = 3600
    post_end_grace_seconds: float = 300.0
    rest_checkpoint_interval_seconds: float = 20.0  # < stale_after/2: quiet takes 2 checkpoints
    status_interval_seconds: float = 30.0
    verify_book_hashes: bool = True
    verify_in_worker: bool = False  # verify in a worker process (pmws/verifier.py): needs a free core
    shard_index: int = 0
    shard_count: int = 1
    shard_index_from_hostname: bool = False
    shutdown_timeout_seconds: float = 8.0


@dataclass
class Metrics:
    """Prometheus `/metrics`, `/healthz`, `/readyz` for `pmws run`."""

    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = 9108


@dataclass
class Upload:
    """`pmws upload` / `pmws verify`: ship closed archives with rclone."""

    source: str = "raw_orderbooks/polymarket"
    manifest_dir: str = "raw_orderbooks/manifests"
    remote: str = ""
    rclone_binary: str = "rclone"
    rclone_config: str = ""
    min_age_seconds: float = 10.0
    verify_mode: str = "auto"
    ledger_path: str = "raw_orderbooks/upload_ledger.jsonl"
    shipped_manifest_dir: str = ""


@dataclass
class Books:
    """`pmws books`: order books rebuilt from archives, as Parquet tables."""

    output_dir: str = "data/books"
    snapshot_interval_seconds: float = 60.0  # full-depth `book_snapshots` every this much receive time
    workers: int = 0  # processes sharing the tokens; 0: one per core up to 4 (1 for small or remote input)


@dataclass
class Config:
    """Everything a command may read. Sections mirror the YAML layout."""

    endpoints: Endpoints = field(default_factory=Endpoints)
    discovery: Discovery = field(default_factory=Discovery)
    websocket: Websocket = field(default_factory=Websocket)
    rest: Rest = field(default_factory=Rest)
    sample: Sample = field(default_factory=Sample)
    archive: Archive = field(default_factory=Archive)
    run: Run = field(default_factory=Run)
    metrics: Metrics = field(default_factory=Metrics)
    upload: Upload = field(default_factory=Upload)
    books: Books = field(default_factory=Books)


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build a Config from defaults, then `path`, then env vars, then `overrides` (dotted keys)."""
    config = Config()
    if path is not None:
        apply_mapping(config, read_yaml(path), source=str(path))
    apply_env(config, os.environ if env is None else env)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            set_dotted(config, dotted, value, source="command line")
    check_together(config)
    return config


DAY = 86400.0
PATH, OPTIONAL = Text(), Text(optional=True)

#: Every key's allowed values (README "Configuration" and the example configs document them). Floors protect
#: Polymarket (no PING or /books storm) and the user; a test walks every key with a value outside its rule.
RULES: dict[str, Rule] = {
    "endpoints.gamma_url": Url(("http", "https")),
    "endpoints.clob_url": Url(("http", "https")),
    "endpoints.ws_url": Url(("ws", "wss")),
    "discovery.output_dir": PATH,
    "discovery.windows": OneOf(("5m", "15m", "1h", "4h")),
    "discovery.lookahead_seconds": Between(60, 366 * DAY),
    "discovery.page_limit": Between(1, 100),
    "discovery.max_pages": Between(1, 1000),
    "discovery.request_timeout_seconds": Between(0.1, 600),
    "websocket.ping_interval_seconds": Between(0.5, 50),  # PROTOCOL.md §2.4: activity at least once a minute
    "websocket.pong_timeout_seconds": Between(1, 600),
    "websocket.stale_after_seconds": Between(1, DAY),
    "websocket.resubscribe_timeout_seconds": Between(1, 3600),
    "websocket.open_timeout_seconds": Between(0.1, 600),
    "websocket.max_assets_per_connection": Between(1, 500),  # PROTOCOL.md §2.3
    "websocket.custom_feature_enabled": Flag(),
    "websocket.reconnect_initial_seconds": Between(0.1, 600),
    "websocket.reconnect_max_seconds": Between(0.1, 3600),
    "websocket.max_frame_bytes": Between(64 * 1024, 1024**3),
    "websocket.user_agent": PATH,
    "websocket.read_batch_ms": Between(0, 1000),
    "websocket.handoff_batch_ms": Between(0, 1000),
    "rest.timeout_seconds": Between(0.1, 600),
    "rest.max_attempts": Between(1, 10),
    "rest.retry_max_seconds": Between(0, 3600),
    "rest.batch_size": Between(1, 500),  # PROTOCOL.md §4: POST /books takes at most 500 tokens
    "sample.market_limit": Between(1, 250),
    "sample.duration_seconds": Between(1, DAY),
    "sample.rest_checkpoint_interval_seconds": Between(1, DAY),
    "sample.output_dir": PATH,
    "sample.manifest_path": PATH,
    "sample.report_path": PATH,
    "sample.live_refresh_seconds": Between(0.1, 60),
    "archive.flush_interval_seconds": Between(0.05, 600),
    "archive.compresslevel": Between(0, 9),
    "archive.max_buffered_bytes": Between(1024**2, 16 * 1024**3),
    "run.output_dir": PATH,
    "run.manifest_dir": PATH,
    "run.rotate_interval_seconds": Between(1, DAY),
    "run.rediscover_interval_seconds": Between(0.5, DAY),
    "run.subscribe_ahead_seconds": Between(0, 366 * DAY),
    "run.post_end_grace_seconds": Between(0, DAY),
    "run.rest_checkpoint_interval_seconds": Between(1, DAY),
    "run.status_interval_seconds": Between(0.5, DAY),
    "run.verify_book_hashes": Flag(),
    "run.verify_in_worker": Flag(),
    "run.shard_index": Between(0, 999),
    "run.shard_count": Between(1, 1000),
    "run.shard_index_from_hostname": Flag(),
    "run.shutdown_timeout_seconds": Between(0.1, 600),
    "metrics.enabled": Flag(),
    "metrics.host": PATH,
    "metrics.port": Between(0, 65535),
    "upload.source": PATH,
    "upload.manifest_dir": PATH,
    "upload.remote": OPTIONAL,
    "upload.rclone_binary": PATH,
    "upload.rclone_config": OPTIONAL,
    "upload.min_age_seconds": Between(0, 30 * DAY),
    "upload.verify_mode": OneOf(("auto", "sha256", "md5", "download")),
    "upload.ledger_path": PATH,
    "upload.shipped_manifest_dir": OPTIONAL,
    "books.output_dir": PATH,
    "books.snapshot_interval_seconds": Between(0, DAY),
    "books.workers": Between(0, 64),
}


def check_rule(dotted: str, value: Any, *, source: str) -> None:
    """Raise ConfigError (naming the source and key) when `value` breaks the key's rule."""
    rule = RULES.get(dotted)
    problem = rule.problem(value) if rule is not None and value is not None else None
    if problem:
        raise ConfigError(f"{source}: '{dotted}' {problem}")


def check_value(name: str, value: Any, rule: Rule) -> None:
    """The same check for a value that is not a config key (a command-line flag); None passes."""
    problem = rule.problem(value) if value is not None else None
    if problem:
        raise ConfigError(f"{name} {problem}")


def check_together(config: Config) -> None:
    """Rules between keys (each key alone was checked as it was set)."""
    run = config.run
    if not run.shard_index_from_hostname and run.shard_index >= run.shard_count:
        raise ConfigError(
            f"run.shard_index {run.shard_index} must be in 0..{run.shard_count - 1} "
            f"(run.shard_count {run.shard_count})"
        )
    ws = config.websocket
    if ws.pong_timeout_seconds <= ws.ping_interval_seconds:
        raise ConfigError(
            f"websocket.pong_timeout_seconds ({ws.pong_timeout_seconds:g}) must be longer than "
            f"websocket.ping_interval_seconds ({ws.ping_interval_seconds:g}): a PONG answers a PING, so a "
            "shorter timeout would replace every connection at each PING"
        )


class _DuplicateKey(Exception):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one silently: a second
    `run:` section would drop every key of the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # not a key a config uses (refused later as a key)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise _DuplicateKey(f"{key!r} is given twice (again at line {line}): keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, or raise ConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a YAML config file (not UTF-8 text)") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def apply_mapping(target: Any, data: Mapping[str, Any], *, source: str, prefix: str = "") -> None:
    """Set fields of dataclass `target` from nested `data`, rejecting unknown keys."""
    fields = {f.name: f for f in dataclasses.fields(target)}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"{source}: unknown key '{dotted}'")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: '{dotted}' must be a mapping")
            apply_mapping(current, value, source=source, prefix=f"{dotted}.")
        else:
            hint = typing.get_type_hints(type(target))[key]
            value = coerce(value, hint, source=source, key=dotted)
            check_rule(dotted, value, source=source)
            setattr(target, key, value)


def apply_env(config: Config, env: Mapping[str, str]) -> None:
    """Apply `PMWS_SECTION__KEY=value` variables; values are parsed as YAML scalars."""
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        dotted = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        set_dotted(config, dotted, value, source=f"environment variable {name}")


def set_dotted(config: Config, dotted: str, value: Any, *, source: str) -> None:
    """Set one `section.key` on config, with the same checks as a file."""
    section, _, key = dotted.partition(".")
    if not key:
        raise ConfigError(f"{source}: '{dotted}' must be written as section.key")
    apply_mapping(config, {section: {key: value}}, source=source)


def coerce(value: Any, hint: Any, *, source: str, key: str) -> Any:
    """Check (and gently convert) a value against a field's type hint."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return coerce(value, args[0], source=source, key=key)
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{source}: '{key}' must be a list, got {value!r}")
        return [coerce(v, item, source=source, key=key) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "yes", "no", "1", "0"}:
            return value.lower() in {"true", "yes", "1"}
        raise ConfigError(f"{source}: '{key}' must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{source}: '{key}' must be an integer, got {value!r}")
        try:
            return int(value)
        except ValueError as exc:
            raise ConfigError(f"{source}: '{key}' must be an integer, got {value!r}") from exc
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}")
        try:
            return float(value)
        except ValueError as exc:
            raise ConfigError(f"{source}: '{key}' must be a number, got {value!r}") from exc
    if hint is str:
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"{source}: '{key}' must be a string, got {value!r}")
        return str(value)
    return value
