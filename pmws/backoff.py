"""Reconnect and retry delays: capped exponential backoff with full jitter, and Retry-After parsing. Pure."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


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
