"""Reconnect delays: capped, jittered, never a tight loop; Retry-After in both forms."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from pmws.backoff import backoff, parse_retry_after


def test_delays_grow_to_the_cap_and_keep_a_floor() -> None:
    low = list(itertools.islice(backoff(1, 30, rand=lambda: 0.0), 8))
    high = list(itertools.islice(backoff(1, 30, rand=lambda: 1.0), 8))
    assert low == [0.5, 1, 2, 4, 8, 15, 15, 15]
    assert high == [1, 2, 4, 8, 16, 30, 30, 30]


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("2.5") == 2.5
    now = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Tue, 24 Nov 2026 12:00:07 GMT", now=now) == 7
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0
