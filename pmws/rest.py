"""REST `/books` checkpoints (PROTOCOL.md §4): one row per POST attempt, failures included.

The client is an argument (tests inject transports). 429 honours Retry-After and the body's
`retry_after_seconds`, 5xx/timeouts back off, each
attempt is its own row. Only an allowlist of response headers is kept: never cookies or credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from pmws.backoff import retry_after_hint
from pmws.config import Rest
from pmws.envelope import utc_text
from pmws.health import RestTotals
from pmws.retry import Attempt, with_retries

SAFE_RESPONSE_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "date",
        "age",
        "cache-control",
        "cf-cache-status",
        "cf-ray",
        "server",
        "retry-after",
    }
)  # no `x-ratelimit-*` headers are documented for these endpoints (PROTOCOL.md §4.4)
MAX_BOOKS_PER_REQUEST = 500  # PROTOCOL.md §4.1


def safe_headers(headers: httpx.Headers) -> dict[str, str]:
    """Keep only headers on the allowlist (lower-cased names)."""
    return {k.lower(): v for k, v in headers.items() if k.lower() in SAFE_RESPONSE_HEADERS}


@dataclass
class Checkpoint:
    """The outcome of one checkpoint: every attempt's row, and the books if one attempt succeeded."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    books: list[dict[str, Any]] | None = None

    @property
    def ok(self) -> bool:
        return self.books is not None


async def checkpoint_books(
    client: httpx.AsyncClient,
    clob_url: str,
    token_ids: list[str],
    *,
    session_id: str,
    checkpoint_sequence: int,
    max_attempts: int = 3,
    retry_max_seconds: float = 30.0,
    timeout: float = 10.0,
    batch_size: int = MAX_BOOKS_PER_REQUEST,
    into: Checkpoint | None = None,
) -> Checkpoint:
    """POST {clob_url}/books for the tokens, `batch_size` (≤ 500) per request, retrying transient failures.

    `into`: the Checkpoint to fill (its rows stay with the caller if this is cancelled midway)."""
    result = into if into is not None else Checkpoint()
    books: list[dict[str, Any]] = []
    size = max(1, min(batch_size, MAX_BOOKS_PER_REQUEST))
    for start in range(0, len(token_ids), size):
        chunk = token_ids[start : start + size]
        got = await _post_with_retries(
            client,
            clob_url,
            chunk,
            result,
            session_id=session_id,
            checkpoint_sequence=checkpoint_sequence,
            max_attempts=max_attempts,
            retry_max_seconds=retry_max_seconds,
            timeout=timeout,
        )
        if got is None:
            return result
        books.extend(got)
    result.books = books
    return result


async def _post_with_retries(
    client: httpx.AsyncClient,
    clob_url: str,
    token_ids: list[str],
    result: Checkpoint,
    *,
    session_id: str,
    checkpoint_sequence: int,
    max_attempts: int,
    retry_max_seconds: float,
    timeout: float,
) -> list[dict[str, Any]] | None:
    async def once(attempt: int) -> Attempt[list[dict[str, Any]]]:
        row, books, retry_after = await post_books_once(client, clob_url, token_ids, timeout=timeout)
        row.update(session_id=session_id, checkpoint_sequence=checkpoint_sequence, attempt=attempt)
        result.rows.append(row)
        return Attempt(books is not None, books, bool(row.get("retryable", False)), retry_after)

    outcome = await with_retries(
        once, max_attempts=max_attempts, backoff_max=retry_max_seconds, hint_max=retry_max_seconds
    )
    return outcome.value


async def post_books_once(
    client: httpx.AsyncClient, clob_url: str, token_ids: list[str], *, timeout: float
) -> tuple[dict[str, Any], list[dict[str, Any]] | None, float | None]:
    """One POST: (row, books or None, the server's wait hint or None). Never raises for HTTP trouble."""
    url = clob_url.rstrip("/") + "/books"
    body = [{"token_id": t} for t in token_ids]
    started_ns = time.time_ns()
    t0 = time.perf_counter()
    row: dict[str, Any] = {
        "record_type": "rest_checkpoint",
        "requested_at_utc": utc_text(started_ns),
        "request": {"method": "POST", "url": url, "token_ids": token_ids},
    }
    try:
        response = await client.post(
            url,
            content=orjson.dumps(body),
            timeout=timeout,
            headers={"content-type": "application/json"},
        )
    except httpx.HTTPError as exc:
        return (
            _failed(row, t0, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__),
            None,
            None,
        )
    row["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 3)
    row["completed_at_utc"] = utc_text(time.time_ns())
    row["status_code"] = response.status_code
    row["response_headers"] = safe_headers(response.headers)
    content = response.content
    parsed, error = _parse_books(content)
    row["response"] = {
        "bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "raw_response_json": parsed if error is None else None,
    }
    if response.status_code == 200 and error is None:
        row.update(ok=True, error=None, retryable=False, books_returned=len(parsed))
        return row, parsed, None
    if response.status_code != 200:
        error = f"HTTP {response.status_code}"
        if parsed is None:
            row["response"]["body_preview"] = content[:200].decode("utf-8", "replace")
    row.update(
        ok=False,
        error=error,
        retryable=response.status_code in (408, 425, 429) or response.status_code >= 500,
    )
    return row, None, retry_after_hint(response.headers, content)


def _failed(row: dict[str, Any], t0: float, error: str) -> dict[str, Any]:
    row.update(
        elapsed_ms=round((time.perf_counter() - t0) * 1000, 3),
        completed_at_utc=utc_text(time.time_ns()),
        status_code=None,
        response_headers={},
        response=None,
        ok=False,
        error=error,
        retryable=True,
    )
    return row


def _parse_books(content: bytes) -> tuple[Any, str | None]:
    """The response body as a list of summaries, or an error saying what it was instead."""
    try:
        parsed = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        return None, f"response is not JSON ({exc})"
    if not isinstance(parsed, list) or not all(isinstance(b, dict) for b in parsed):
        return parsed, "response is not a JSON array of books"
    return parsed, None


async def checkpoint_loop(
    client: httpx.AsyncClient,
    clob_url: str,
    tokens: Callable[[], list[str]],
    totals: RestTotals,
    *,
    settings: Rest,
    interval: float,
    session_id: str,
    stop: asyncio.Event,
    write: Callable[[dict[str, Any]], None],
    on_books: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None,
) -> None:
    """A checkpoint of the current `tokens()` at start and every `interval` until `stop` (none while empty).

    Every attempt's row goes to `write`, failed ones counted; a checkpoint whose books all came back is
    handed to `on_books` (the run compares them with its rebuilt books).
    """
    while not stop.is_set():
        began = time.monotonic()
        token_ids = tokens()
        if token_ids:
            totals.checkpoints += 1
            checkpoint = Checkpoint()
            try:
                await checkpoint_books(
                    client,
                    clob_url,
                    token_ids,
                    session_id=session_id,
                    checkpoint_sequence=totals.checkpoints,
                    max_attempts=settings.max_attempts,
                    retry_max_seconds=min(settings.retry_max_seconds, interval),
                    timeout=settings.timeout_seconds,
                    batch_size=settings.batch_size,
                    into=checkpoint,
                )
            except BaseException:  # stopped midway (the end of a sample, a shutdown): its attempts are kept
                _write_rows(checkpoint, write, totals)
                totals.failed += 1
                raise
            _write_rows(checkpoint, write, totals)
            if checkpoint.books is None:
                totals.failed += 1
            else:
                totals.ok += 1
                if on_books is not None:
                    await on_books(checkpoint.books)
        remaining = interval - (time.monotonic() - began)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, remaining))


def _write_rows(checkpoint: Checkpoint, write: Callable[[dict[str, Any]], None], totals: RestTotals) -> None:
    for row in checkpoint.rows:
        write(row)
        if not row.get("ok"):
            totals.failed_attempts += 1
