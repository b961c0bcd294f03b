"""Fetch BTC up/down market objects from Gamma (PROTOCOL.md §6). The httpx client is an argument.

Two passes, unioned: (1) the slugs the clock predicts for each window (§6.3), asked for directly with repeated
`slug=` parameters — this finds the trading windows even if listings lag; (2) keyset pagination of
`/markets/keyset?closed=false` bounded by `end_date_min/max`, ordered by `endDate` (camelCase, §6.1), `limit`
≤ 100, each page asked for with `after_cursor` = the previous page's `next_cursor` until a page has none.
The legacy offset listing is deprecated and answers 422 past offset 2,000 (§6.1): not used for paging.

A request that fails (after the retries) or answers with the wrong shape is a failed page: the fetch raises
DiscoveryError naming it rather than hand back a partial listing that could replace a good one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from pmws.backoff import retry_after_hint
from pmws.errors import DiscoveryError, RestError, describe_network_error
from pmws.markets import WINDOW_SECONDS, iso, slug_for_window, window_starts
from pmws.retry import Attempt, with_retries

SLUGS_PER_REQUEST = 40
PREDICTED_PER_WINDOW = 12
MAX_ATTEMPTS = 3
MAX_PAGE_LIMIT = 100  # /markets/keyset serves at most 100 markets a page (§6.1)
BACKOFF_MAX_SECONDS = 10.0  # longest backoff between attempts without a server hint
RETRY_MAX_SECONDS = 30.0  # longest wait between attempts, whatever the server's hint


@dataclass
class GammaFetch:
    """Raw market objects, how many requests it took, and what went wrong."""

    objects: list[Any] = field(default_factory=list)
    requests: int = 0
    failed_requests: int = 0  # every failed attempt, retried or not
    failed_pages: int = 0  # requests given up on (after the retries) or answered with the wrong shape
    pages: int = 0  # keyset listing pages received
    errors: list[str] = field(default_factory=list)
    timeout: Any = httpx.USE_CLIENT_DEFAULT  # per-request timeout


async def fetch_btc_markets(
    client: httpx.AsyncClient,
    gamma_url: str,
    *,
    now: datetime,
    windows: list[str],
    lookahead_seconds: int,
    page_limit: int = 100,
    max_pages: int = 100,
    request_timeout: float | None = None,
) -> GammaFetch:
    """Market objects from both passes.

    Raises RestError when Gamma cannot be reached at all, DiscoveryError when any page failed (the listing
    would be incomplete) or the listing is longer than `max_pages` pages of `page_limit` (≤ 100) markets.
    `request_timeout` (seconds) overrides the client's timeout for every Gamma request.
    """
    fetch = GammaFetch(timeout=httpx.USE_CLIENT_DEFAULT if request_timeout is None else request_timeout)
    slugs = predicted_slugs(windows, now, lookahead_seconds)
    for start in range(0, len(slugs), SLUGS_PER_REQUEST):
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("slug", s) for s in slugs[start : start + SLUGS_PER_REQUEST]
        ]
        params.append(("limit", str(SLUGS_PER_REQUEST)))
        page = await _get_json(client, gamma_url, "/markets", params, fetch)
        if isinstance(page, list):
            fetch.objects.extend(page)
        elif page is not None:
            _wrong_shape(fetch, gamma_url, "/markets", "a JSON list of markets", page)
        elif fetch.requests == fetch.failed_requests:
            raise RestError(fetch.errors[-1])  # unreachable: fail once, not per chunk
    await _list_keyset(client, gamma_url, now, lookahead_seconds, page_limit, max_pages, fetch)
    if fetch.requests == fetch.failed_requests:
        raise RestError(fetch.errors[-1] if fetch.errors else f"cannot reach {gamma_url}")
    if fetch.failed_pages:
        raise DiscoveryError(
            f"Gamma discovery incomplete: {fetch.failed_pages} request(s) failed after retries "
            f"({fetch.failed_requests} failed attempts of {fetch.requests}); last: {fetch.errors[-1]}"
        )
    return fetch


async def _list_keyset(
    client: httpx.AsyncClient,
    gamma_url: str,
    now: datetime,
    lookahead_seconds: int,
    page_limit: int,
    max_pages: int,
    fetch: GammaFetch,
) -> None:
    """Open markets ending within the lookahead, page by page through `/markets/keyset` (§6.1)."""
    limit = max(1, min(page_limit, MAX_PAGE_LIMIT))
    cursor: str | None = None
    for _ in range(max_pages):
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("closed", "false"),
            ("limit", str(limit)),
            ("end_date_min", iso(now)),
            ("end_date_max", iso(now + timedelta(seconds=lookahead_seconds))),
            ("order", "endDate"),
            ("ascending", "true"),
        ]
        if cursor is not None:
            params.append(("after_cursor", cursor))
        page = await _get_json(client, gamma_url, "/markets/keyset", params, fetch)
        if page is None:  # counted in fetch.failed_pages
            return
        markets, cursor, problem = keyset_page(page)
        if problem is not None:
            _wrong_shape(fetch, gamma_url, "/markets/keyset", problem, page)
            return
        fetch.pages += 1
        fetch.objects.extend(markets)
        if cursor is None:
            return
    raise DiscoveryError(
        f"Gamma listing has more than {max_pages} pages of {limit} markets; raise discovery.max_pages"
    )


def keyset_page(page: Any) -> tuple[list[Any], str | None, str | None]:
    """(markets, next_cursor, None) from a keyset page `{"markets": [...], "next_cursor": "..."}`, or
    ([], None, what was expected) when the page has another shape. The last page has no `next_cursor`."""
    expected = 'an object {"markets": [...], "next_cursor": ...}'
    if not isinstance(page, dict) or not isinstance(page.get("markets"), list):
        return [], None, expected
    cursor = page.get("next_cursor")
    if cursor is not None and not isinstance(cursor, str):
        return [], None, expected + " with a string next_cursor"
    return page["markets"], cursor or None, None


def _wrong_shape(fetch: GammaFetch, gamma_url: str, path: str, expected: str, got: Any) -> None:
    """Count a 200 whose JSON is not what the endpoint returns as a failed request, with the reason."""
    fetch.failed_requests += 1
    fetch.failed_pages += 1
    what = type(got).__name__ if not isinstance(got, dict) else f"object with keys {sorted(got)[:5]}"
    fetch.errors.append(f"{gamma_url.rstrip('/')}{path}: Gamma answered {what}, expected {expected}")


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

    async def once(_attempt: int) -> Attempt[Any]:
        fetch.requests += 1
        try:
            response = await client.get(url, params=params, timeout=fetch.timeout)
        except httpx.HTTPError as exc:
            return _failed(fetch, describe_network_error(url, exc), retryable=True)
        if response.status_code == 200:
            try:
                return Attempt(done=True, value=response.json())
            except ValueError as exc:
                raise DiscoveryError(f"{url}: Gamma answered with something that is not JSON") from exc
        error = f"{url}: HTTP {response.status_code}{_error_text(response)}"
        retryable = response.status_code >= 500 or response.status_code == 429
        return _failed(fetch, error, retryable, retry_after_hint(response.headers, response.content))

    outcome = await with_retries(
        once, max_attempts=MAX_ATTEMPTS, backoff_max=BACKOFF_MAX_SECONDS, hint_max=RETRY_MAX_SECONDS
    )
    if not outcome.done:
        fetch.failed_pages += 1
    return outcome.value


def _failed(fetch: GammaFetch, error: str, retryable: bool, retry_after: float | None = None) -> Attempt[Any]:
    fetch.failed_requests += 1
    fetch.errors.append(error)
    return Attempt(retryable=retryable, retry_after=retry_after)


def _error_text(response: httpx.Response) -> str:
    """` (<error>)` from a JSON error body such as 422 `{"error": "offset too large, …"}`, else ''."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("error") if isinstance(body, dict) else None
    return f" ({str(message)[:200]})" if message else ""
