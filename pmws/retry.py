"""The one retry loop for HTTP requests (Gamma pages, REST `/books`); the delays come from `pmws.backoff`.

The websocket's reconnect loop (`pmws.feed`) is not this one: it never gives up, so it keeps its own loop
over the same `backoff()` and `retry_delay()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pmws.backoff import backoff, retry_delay

T = TypeVar("T")


@dataclass(frozen=True)
class Attempt(Generic[T]):
    """What one try gave: a value (`done`), or a failure, retryable or not, with the server's wait hint."""

    done: bool = False
    value: T | None = None
    retryable: bool = False
    retry_after: float | None = None  # seconds, from `backoff.retry_after_hint`


async def with_retries(
    attempt: Callable[[int], Awaitable[Attempt[T]]],
    *,
    max_attempts: int,
    backoff_max: float,
    hint_max: float,
) -> Attempt[T]:
    """Call `attempt(1)`, `attempt(2)`, … until one is done, one fails for good, or `max_attempts` ran.

    Between tries: capped jittered backoff from 0.5 s up to `backoff_max`, or the server's hint when
    longer, bounded by `hint_max`. Returns the last attempt.
    """
    delays = backoff(0.5, backoff_max)
    number = 1
    while True:
        outcome = await attempt(number)
        if outcome.done or not outcome.retryable or number >= max_attempts:
            return outcome
        await asyncio.sleep(retry_delay(next(delays), outcome.retry_after, hint_max))
        number += 1
