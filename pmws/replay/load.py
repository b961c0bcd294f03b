"""Build a `Replay` from paths and options: the archives, the token catalog, the time window."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import orjson

from pmws.errors import ConfigError, DiscoveryError
from pmws.markets import Market, parse_time
from pmws.read import Reader
from pmws.replay.catalog import Catalog
from pmws.replay.server import Replay
from pmws.replay.source import open_replay_archives, scan_metadata

if TYPE_CHECKING:
    from pmws.transfer.rclone import Rclone


def parse_speed(text: str) -> float | None:
    """`1` = recorded pace, `N` = N times faster, `max` = as fast as clients read (None)."""
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if not speed > 0 or speed == float("inf"):
        raise ConfigError(f"--speed must be a positive number or 'max', got {text!r}")
    return speed


def parse_instant(flag: str, text: str | None) -> int | None:
    """An ISO 8601 time (UTC unless it says otherwise) → epoch nanoseconds."""
    if text is None:
        return None
    try:
        moment = parse_time(text)
    except ValueError as exc:
        raise ConfigError(f"{flag}: not an ISO 8601 time: {text!r}") from exc
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def load_discovery_markets(path: Path) -> list[Market]:
    """The markets of a `pmws discover` output file; DiscoveryError (exit 1) if it cannot be used."""
    try:
        data = orjson.loads(path.read_bytes())
        return [Market.from_json(item) for item in data["markets"]]
    except OSError as exc:
        raise DiscoveryError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DiscoveryError(f"{path}: not a pmws discovery file ({exc})") from exc


def build_catalog(reader: Reader, discovery: Path | None) -> Catalog:
    """Token metadata: the discovery file first, then the envelopes and REST checkpoints."""
    catalog = Catalog()
    if discovery is not None:
        for market in load_discovery_markets(discovery):
            catalog.add_market(market)
    metadata = scan_metadata(reader.files, lines=reader.lines)
    for tracked in metadata.tracked:
        catalog.add_tracked(tracked)
    for summary in metadata.summaries:
        catalog.add_summary(summary)
    return catalog


def build_replay(
    inputs: Sequence[Path | str],
    *,
    speed: str = "1",
    start: str | None = None,
    end: str | None = None,
    discovery: Path | None = None,
    on_problem: Callable[[str], None] | None = None,
    manifest_dirs: Sequence[Path] = (),
    rclone: Rclone | None = None,
    shift_to: str | None = None,
) -> Replay:
    """A replay of the archives under `inputs` (files or directories, local or rclone `REMOTE:PATH` read
    with `rclone`); ConfigError for bad options. `manifest_dirs`: where else to look for manifests.
    `shift_to` ("now" or an ISO 8601 time): Gamma shows the first record played at that time."""
    pace = parse_speed(speed)
    start_ns, end_ns = parse_instant("--start", start), parse_instant("--end", end)
    shift: int | Literal["now"] | None = "now"
    if shift_to is None or shift_to.strip().lower() != "now":
        shift = parse_instant("--shift-to", shift_to)
    if start_ns is not None and end_ns is not None and end_ns < start_ns:
        raise ConfigError(f"--end {end} is before --start {start}")
    reader = open_replay_archives(inputs, end_ns=end_ns, manifest_dirs=manifest_dirs, rclone=rclone)
    catalog = build_catalog(reader, discovery)
    return Replay(reader, catalog, speed=pace, start_ns=start_ns, on_problem=on_problem, shift_to=shift)
