"""Gamma objects → live BTC up/down markets; slugs; selection (PROTOCOL.md §6)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pmws.markets import (
    filter_live,
    parse_market,
    select_markets,
    slug_for_window,
    window_of_slug,
    window_starts,
)
from tests.conftest import example

NOW = datetime(2026, 3, 12, 9, 21, tzinfo=UTC)


def gamma_5m() -> dict[str, Any]:
    obj = example("gamma_market_btc_updown_5m_nautilus.json")
    assert isinstance(obj, dict)
    return obj


def test_real_gamma_object_parses_with_json_encoded_fields() -> None:
    market = parse_market(gamma_5m())
    assert market.market_slug == "btc-updown-5m-1773307200"
    assert market.window == "5m"
    assert market.window_start_utc == "2026-03-12T09:20:00Z"
    assert market.end_time_utc == "2026-03-12T09:25:00Z"
    assert [t.outcome for t in market.tokens] == ["Up", "Down"]
    assert market.tokens[0].token_id.startswith("1042398980")
    assert (market.min_order_size, market.tick_size, market.neg_risk) == ("5", "0.01", False)


def test_up_down_mapped_by_label_not_position() -> None:
    obj = gamma_5m()
    ids = json.loads(obj["clobTokenIds"])
    obj["clobTokenIds"] = json.dumps(ids[::-1])
    obj["outcomes"] = json.dumps(["Down", "Up"])
    market = parse_market(obj)
    by_label = {t.outcome: t.token_id for t in market.tokens}
    assert by_label["Up"] == ids[0] and by_label["Down"] == ids[1]


def test_15m_capture_from_another_source() -> None:
    market = parse_market(example("gamma_market_btc_updown_15m_sebislaw.json"))
    assert market.window == "15m" and market.end_time_utc == "2025-12-31T17:15:00Z"


def test_filter_live_drops_zombies_closed_malformed_and_other_assets() -> None:
    live = gamma_5m()
    zombie = copy.deepcopy(live) | {
        "slug": "btc-updown-5m-1773306900",
        "conditionId": "0xz",
        "endDate": "2026-03-12T09:20:00Z",
    }
    closed = copy.deepcopy(live) | {
        "conditionId": "0xc",
        "slug": "btc-updown-5m-1773307500",
        "closed": True,
    }
    not_accepting = copy.deepcopy(live) | {
        "conditionId": "0xn",
        "slug": "btc-updown-5m-1773307800",
        "acceptingOrders": False,
    }
    eth = copy.deepcopy(live) | {"slug": "eth-updown-5m-1773307200", "conditionId": "0xe"}
    broken = copy.deepcopy(live) | {
        "slug": "btc-updown-5m-1773308100",
        "conditionId": "0xb",
        "clobTokenIds": "[not json",
    }
    result = filter_live([live, zombie, closed, not_accepting, eth, broken, "nonsense", {}], NOW)
    assert [m.condition_id for m in result.markets] == [live["conditionId"]]
    assert result.skipped_not_btc == 2  # eth and {}
    assert result.skipped_malformed == 2  # broken and a non-object
    assert result.skipped_not_live == {"window ended": 1, "closed": 1, "not accepting orders": 1}


@pytest.mark.parametrize(
    ("window", "start", "slug"),
    [
        ("5m", datetime(2026, 3, 12, 9, 20, tzinfo=UTC), "btc-updown-5m-1773307200"),
        ("15m", datetime(2025, 12, 31, 17, 0, tzinfo=UTC), "btc-updown-15m-1767200400"),
        (
            "1h",
            datetime(2026, 8, 16, 18, 0, tzinfo=UTC),
            "bitcoin-up-or-down-august-16-2026-2pm-et",
        ),
        ("1h", datetime(2026, 1, 5, 5, 0, tzinfo=UTC), "bitcoin-up-or-down-january-5-2026-12am-et"),
    ],
)
def test_slugs(window: str, start: datetime, slug: str) -> None:
    assert slug_for_window(window, start) == slug
    assert window_of_slug(slug) == window


def test_4h_windows_start_on_new_york_four_hour_boundaries() -> None:
    # the real btc-updown-4h-1772442000 is "March 2, 4:00AM-8:00AM ET" (PROTOCOL.md §6.3)
    now = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
    starts = window_starts("4h", now, count=2)
    assert slug_for_window("4h", starts[0]) == "btc-updown-4h-1772442000"
    assert starts[1] - starts[0] == timedelta(hours=4)
    summer = window_starts("4h", datetime(2026, 7, 1, 5, 0, tzinfo=UTC), count=1)[0]
    assert summer == datetime(2026, 7, 1, 4, 0, tzinfo=UTC)  # midnight EDT


def test_window_starts_are_aligned() -> None:
    starts = window_starts("15m", NOW, count=3)
    assert starts[0] == datetime(2026, 3, 12, 9, 15, tzinfo=UTC)
    assert starts[2] - starts[1] == timedelta(minutes=15)


def test_selection_prefers_trading_windows_that_outlast_the_run() -> None:
    market = parse_market(gamma_5m())
    later = copy.deepcopy(market)
    later.market_slug, later.condition_id = "later", "0xl"
    later.window_start_utc, later.end_time_utc = "2026-03-12T09:25:00Z", "2026-03-12T09:30:00Z"
    assert select_markets([later, market], limit=1, now=NOW, run_seconds=60) == [market]
    # a 5-minute run would outlast the current window: only the next one qualifies
    assert select_markets([later, market], limit=2, now=NOW, run_seconds=300) == [later]


def test_only_configured_windows_are_kept() -> None:
    result = filter_live([gamma_5m()], NOW, windows=["15m", "1h"])
    assert result.markets == [] and result.skipped_not_live == {"window not configured": 1}
    assert len(filter_live([gamma_5m()], NOW, windows=["5m"]).markets) == 1


def test_an_hourly_slug_without_its_year_is_still_an_hourly_window() -> None:
    """Hourly slugs carried no year until 2026 (`bitcoin-up-or-down-february-22-2pm-et`); a listing that still
    shows one must not drop the market."""
    assert window_of_slug("bitcoin-up-or-down-february-22-2pm-et") == "1h"
    assert window_of_slug("bitcoin-up-or-down-february-22-2pm") is None
