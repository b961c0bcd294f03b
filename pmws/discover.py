"""`pmws discover`: Gamma → live BTC up/down markets → the discovery file (written atomically)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from pmws import __version__
from pmws.archive.files import write_atomic
from pmws.config import Config
from pmws.errors import DiscoveryError, PmwsError
from pmws.gamma import fetch_btc_markets
from pmws.layout import discovery_latest, discovery_snapshot
from pmws.manifest import canonical_json
from pmws.markets import DiscoveryResult, Market, filter_live, iso


@dataclass
class DiscoveryOutcome:
    result: DiscoveryResult
    latest_path: Path
    snapshot_path: Path
    requests: int
    failed_requests: int


def http_client(config: Config, *, timeout: float) -> httpx.AsyncClient:
    """The one place HTTP clients are made: a browser-like UA avoids Cloudflare 1010s (PROTOCOL.md §2.3)."""
    return httpx.AsyncClient(
        timeout=timeout,
        headers={"user-agent": config.websocket.user_agent, "accept": "application/json"},
        follow_redirects=True,
    )


def _kept(latest: Path) -> str:
    return f"kept {latest}" if latest.exists() else f"nothing written to {latest}"


async def discover(
    config: Config, *, now: datetime | None = None, simulated: bool = False
) -> DiscoveryOutcome:
    """Fetch, filter and write the discovery file; return what was found.

    The simulator's markets go to their own files, marked `simulated: true`, so they never feed a real
    sample. An answer with no live market (`[]`, junk, only malformed objects) writes nothing: the previous
    discovery file is kept and DiscoveryError says why.
    """
    moment = now or datetime.now(UTC)
    latest = discovery_latest(config.discovery.output_dir, simulated=simulated)
    try:
        async with http_client(config, timeout=config.discovery.request_timeout_seconds) as client:
            fetch = await fetch_btc_markets(
                client,
                config.endpoints.gamma_url,
                now=moment,
                windows=config.discovery.windows,
                lookahead_seconds=config.discovery.lookahead_seconds,
                page_limit=config.discovery.page_limit,
                max_pages=config.discovery.max_pages,
            )
    except PmwsError as exc:  # an incomplete or unusable answer never replaces the previous file
        raise type(exc)(f"{exc}; {_kept(latest)}") from exc
    result = filter_live(fetch.objects, moment, windows=config.discovery.windows)
    if not result.markets:
        raise DiscoveryError(
            f"{config.endpoints.gamma_url}: no live BTC up/down market in Gamma's answer "
            f"({_found(result, fetch.requests)}); {_kept(latest)}"
        )
    document = discovery_document(result, config=config, now=moment, requests=fetch.requests)
    document["simulated"] = simulated
    snapshot = discovery_snapshot(config.discovery.output_dir, moment, simulated=simulated)
    text = canonical_json(document)
    write_atomic(snapshot, text)
    write_atomic(latest, text)
    return DiscoveryOutcome(result, latest, snapshot, fetch.requests, fetch.failed_requests)


def _found(result: DiscoveryResult, requests: int) -> str:
    not_live = sum(result.skipped_not_live.values())
    return (
        f"{result.seen} objects in {requests} requests: {result.skipped_not_btc} not BTC up/down, "
        f"{result.skipped_malformed} malformed, {not_live} not live"
    )


def discovery_document(
    result: DiscoveryResult, *, config: Config, now: datetime, requests: int
) -> dict[str, Any]:
    return {
        "generated_at_utc": iso(now),
        "generator": f"pmws {__version__}",
        "gamma_url": config.endpoints.gamma_url,
        "windows": config.discovery.windows,
        "lookahead_seconds": config.discovery.lookahead_seconds,
        "requests": requests,
        "counts": {
            "objects_seen": result.seen,
            "live_btc_updown_markets": len(result.markets),
            "skipped_not_btc_updown": result.skipped_not_btc,
            "skipped_malformed": result.skipped_malformed,
            "skipped_not_live": result.skipped_not_live,
        },
        "malformed_examples": result.malformed_examples,
        "markets": [m.to_json() for m in result.markets],
    }


def load_discovery(path: Path, *, simulated: bool = False) -> list[Market]:
    """Markets from a discovery file, or DiscoveryError saying what to do.

    A real sample refuses a file marked `simulated: true` (the simulator's token ids), and a simulated one
    a file that is not (files without the marker, from older versions, count as real).
    """
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise DiscoveryError(
            f"{path}: no discovery file; run `pmws discover` first (or pass --discover)"
        ) from exc
    except OSError as exc:
        raise DiscoveryError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except orjson.JSONDecodeError as exc:
        raise DiscoveryError(f"{path}: not valid JSON; re-run `pmws discover`") from exc
    if not isinstance(data, dict) or not isinstance(data.get("markets"), list):
        raise DiscoveryError(f"{path}: no 'markets' list; re-run `pmws discover`")
    if (data.get("simulated") is True) != simulated:
        held = "the simulator's markets (simulated: true)" if not simulated else "real markets"
        raise DiscoveryError(
            f"{path}: holds {held}, not what this {'simulated ' if simulated else ''}sample records; "
            "run `pmws discover` (or pass --discover)"
        )
    markets = []
    for index, item in enumerate(data["markets"]):
        try:
            markets.append(Market.from_json(item))
        except (KeyError, TypeError, ValueError) as exc:
            raise DiscoveryError(
                f"{path}: market #{index} is malformed ({exc}); re-run `pmws discover`"
            ) from exc
    return markets
