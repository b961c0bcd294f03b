"""Window alignment, slugs and titles against captured Gamma markets (PROTOCOL.md §6.3)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pmws.sim.windows import align, btc_slug, following, iso_z, preceding, updown_title


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("window", "start", "slug", "title"),
    [
        ("5m", 1773307200, "btc-updown-5m-1773307200", "Bitcoin Up or Down - March 12, 5:20AM-5:25AM ET"),
        (
            "15m",
            1767200400,
            "btc-updown-15m-1767200400",
            "Bitcoin Up or Down - December 31, 12:00PM-12:15PM ET",
        ),
        ("4h", 1772442000, "btc-updown-4h-1772442000", "Bitcoin Up or Down - March 2, 4:00AM-8:00AM ET"),
    ],
)
def test_captured_windows(window: str, start: int, slug: str, title: str) -> None:
    assert align(window, start + 123) == start
    assert btc_slug(window, start) == slug
    assert updown_title("Bitcoin", window, start, following(window, start)) == title


def test_hourly_slug_and_title_are_new_york_time() -> None:
    start = align("1h", ts("2026-08-16T18:40:00"))  # 2:40PM EDT
    assert btc_slug("1h", start) == "bitcoin-up-or-down-august-16-2026-2pm-et"
    assert updown_title("Bitcoin", "1h", start, start + 3600) == "Bitcoin Up or Down - August 16, 2PM ET"
    assert (
        btc_slug("1h", align("1h", ts("2026-08-17T04:10:00"))) == "bitcoin-up-or-down-august-17-2026-12am-et"
    )


def test_four_hour_windows_follow_new_york_midnight_across_dst() -> None:
    summer = align("4h", ts("2026-07-01T13:00:00"))  # 9AM EDT → window 8AM-12PM EDT = 12:00Z
    assert summer == ts("2026-07-01T12:00:00")
    spring = align("4h", ts("2026-03-08T05:30:00"))  # 00:30 EST on the DST day
    assert following("4h", spring) - spring == 3 * 3600  # 0:00 EST → 4:00 EDT
    autumn = align("4h", ts("2026-11-01T04:30:00"))  # 00:30 EDT on the fall-back day
    assert following("4h", autumn) - autumn == 5 * 3600
    assert preceding("4h", following("4h", autumn)) == autumn


def test_iso_z() -> None:
    assert iso_z(1773307500) == "2026-03-12T09:25:00Z"
    assert iso_z(1773307500.328428, micro=True) == "2026-03-12T09:25:00.328428Z"
