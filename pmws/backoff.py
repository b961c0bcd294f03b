"""Reconnect and retry delays: capped exponential backoff with full jitter, and the server's wait hint. Pure.

The one place Retry-After is read and bounded, for Gamma, REST `/books` and the websocket upgrade alike.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import orjson

RETRY_AFTER_MAX_SECONDS = 600.0  # no server hint makes us wait longer than this, whatever the caller allows


def backoff(
    initial: float,
    maximum: float,
    *,
    factor: float = 2.0,
    rand: Callable[[], float] = random.random,
) -> Iterator[float]:
    """Endless delays: the n-th is uniform in [cap/2, cap] with cap = min(maximum, initial * factor**n).

    Half the cap is kept as a floor so a flapping endpoint is never hit in a tight loop.
    """
    cap = max(initial, 0.001)
    while True:
        bounded = min(maximum, cap)
        yield bounded / 2 + rand() * bounded / 2
        cap *= factor


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent/invalid."""
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_after_hint(
    headers: Mapping[str, str] | None, body: bytes | bytearray | None = None, *, now: datetime | None = None
) -> float | None:
    """The server's wait hint on a 429/503: the `Retry-After` header and the JSON body's `retry_after_seconds`
    (PROTOCOL.md §4.4: the `/books` doc puts it in the body), the larger of the two; None if neither is there.
    """
    hints = [parse_retry_after(headers.get("retry-after") if headers is not None else None, now=now)]
    if body:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            hints.append(_seconds(parsed.get("retry_after_seconds")))
    found = [h for h in hints if h is not None]
    return max(found) if found else None


def retry_delay(backoff_delay: float, hint: float | None, maximum: float) -> float:
    """The wait before the next attempt: our backoff, or the server's hint when longer, bounded by `maximum`
    (and RETRY_AFTER_MAX_SECONDS) so a silly hint cannot park a loop for hours."""
    if hint is None:
        return backoff_delay
    return max(backoff_delay, min(hint, maximum, RETRY_AFTER_MAX_SECONDS))


def _seconds(value: object) -> float | None:
    """A non-negative finite number of seconds from a JSON number or numeric string, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
