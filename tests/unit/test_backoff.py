"""Reconnect delays: capped, jittered, never a tight loop; Retry-After in both forms."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import httpx

from pmws.backoff import RETRY_AFTER_MAX_SECONDS, backoff, parse_retry_after, retry_after_hint, retry_delay


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


def test_retry_after_hint_reads_the_header_and_the_json_body() -> None:
    assert retry_after_hint(httpx.Headers({"Retry-After": "4"})) == 4
    assert retry_after_hint(httpx.Headers(), b'{"error":"too many","retry_after_seconds":6}') == 6
    assert retry_after_hint(httpx.Headers(), b'{"retry_after_seconds":"2.5"}') == 2.5
    assert retry_after_hint(httpx.Headers({"retry-after": "3"}), b'{"retry_after_seconds":8}') == 8  # larger
    for body in (b"not json", b"[1]", b'{"retry_after_seconds":true}', b'{"retry_after_seconds":"NaN"}', b""):
        assert retry_after_hint(httpx.Headers(), body) is None
    assert retry_after_hint(None, b'{"retry_after_seconds":-1}') == 0


def test_retry_delay_takes_the_longer_wait_within_the_bound() -> None:
    assert retry_delay(1.5, None, 10) == 1.5
    assert retry_delay(1.5, 4, 10) == 4
    assert retry_delay(1.5, 0, 10) == 1.5  # a zero hint never makes us hammer
    assert retry_delay(1.5, 3600, 10) == 10
    assert retry_delay(1.5, 3600, 5000) == RETRY_AFTER_MAX_SECONDS
