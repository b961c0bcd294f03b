"""Fetch BTC up/down market objects from Gamma (PROTOCOL.md §6). The httpx client is an argument.

Two passes, unioned: (1) the slugs the clock predicts for each window (§6.3), asked for directly with repeated
`slug=` parameters — this finds the trading windows even if listings are capped; (2) offset pagination of
`/markets?closed=false` bounded by `end_date_min/max`, `limit` ≤ 100 (§6.1), stopping on a short page.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from pmws.backoff import backoff, parse_retry_after
from pmws.errors import DiscoveryError, RestError, describe_network_error
from pmws.markets import WINDOW_SECONDS, iso, slug_for_window, window_starts

SLUGS_PER_REQUEST = 40
PREDICTED_PER_WINDOW = 12
MAX_ATTEMPTS = 3


@dataclass
class GammaFetch:
    """Raw market objects and how many requests it took."""

    objects: list[Any] = field(default_factory=list)
    requests: int = 0
    failed_requests: int = 0
    errors: list[str] = field(default_factory=list)


async def fetch_btc_markets(
    client: httpx.AsyncClient,
    gamma_url: str,
    *,
    now: datetime,
    windows: list[str],
    lookahead_seconds: int,
    page_limit: int = 100,
    max_pages: int = 50,
) -> GammaFetch:
    """Market objects from both passes. Raises RestError when Gamma cannot be reached at all."""
    fetch = GammaFetch()
    slugs = predicted_slugs(windows, now, lookahead_seconds)
    for start in range(0, len(slugs), SLUGS_PER_REQUEST):
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("slug", s) for s in slugs[start : start + SLUGS_PER_REQUEST]
        ]
        params.append(("limit", str(SLUGS_PER_REQUEST)))
        page = await _get_json(client, gamma_url, "/markets", params, fetch)
        if isinstance(page, list):
            fetch.objects.extend(page)
        elif fetch.requests == fetch.failed_requests:
            raise RestError(fetch.errors[-1])  # unreachable: fail once, not per chunk
    limit = max(1, min(page_limit, 100))
    for page_number in range(max_pages):
        params = [
            ("closed", "false"),
            ("limit", str(limit)),
            ("offset", str(page_number * limit)),
            ("end_date_min", iso(now)),
            ("end_date_max", iso(now + timedelta(seconds=lookahead_seconds))),
            ("order", "endDate"),
            ("ascending", "true"),
        ]
        page = await _get_json(client, gamma_url, "/markets", params, fetch)
        if not isinstance(page, list):
            break
        fetch.objects.extend(page)
        if len(page) < limit:
            break
    if fetch.requests == fetch.failed_requests:
        raise RestError(fetch.errors[-1] if fetch.errors else f"cannot reach {gamma_url}")
    return fetch


def predicted_slugs(windows: list[str], now: datetime, lookahead_seconds: int) -> list[str]:
    """Slugs of the current window and the next ones within the lookahead (at most 12 per window length).

    This pass is there to find the windows trading now even if listings lag or cap; pagination finds the
    rest, so its cost does not grow with the lookahead.
    """
    slugs: list[str] = []
    for window in windows:
        if window not in WINDOW_SECONDS:
            raise DiscoveryError(f"unknown window {window!r}; use one of {sorted(WINDOW_SECONDS)}")
        count = min(PREDICTED_PER_WINDOW, 1 + lookahead_seconds // WINDOW_SECONDS[window])
        slugs.extend(slug_for_window(window, start) for start in window_starts(window, now, count=count))
    return slugs


async def _get_json(
    client: httpx.AsyncClient,
    base: str,
    path: str,
    params: list[tuple[str, str | int | float | bool | None]],
    fetch: GammaFetch,
) -> Any:
    """GET with retries on 429/5xx/network errors; records failures in `fetch` and returns None."""
    url = base.rstrip("/") + path
    delays = backoff(0.5, 10.0)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        fetch.requests += 1
        retry_after: float | None = None
        try:
            response = await client.get(url, params=params)
        except httpx.HTTPError as exc:
            error = describe_network_error(url, exc)
        else:
            if response.status_code == 200:
                try:
                    return response.json()
                except ValueError:
                    raise DiscoveryError(f"{url}: Gamma answered with something that is not JSON") from None
            error = f"{url}: HTTP {response.status_code}"
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if response.status_code < 500 and response.status_code != 429:
                fetch.failed_requests += 1
                fetch.errors.append(error)
                return None
        fetch.failed_requests += 1
        fetch.errors.append(error)
        if attempt < MAX_ATTEMPTS:
            await asyncio.sleep(min(retry_after, 10.0) if retry_after is not None else next(delays))
    return None
