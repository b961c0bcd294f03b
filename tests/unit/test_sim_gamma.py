"""Gamma objects have the captured shape, ids are deterministic, listings roll with the clock (§6)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pmws.sim.catalog import Catalog, token_id
from pmws.sim.gamma import QueryError, event_object, market_object, select, select_keyset
from tests.conftest import example

NOW = 1_790_000_000.0  # 2026-09-21, EDT
QUOTE = (0.5, 0.51, 0.51, 0.01)


def listing(now: float = NOW, **kwargs: Any) -> list[Any]:
    return Catalog(kwargs.get("windows", ["5m", "15m", "1h", "4h"]), 3, 1).listing(now)


def test_btc_market_object_has_the_captured_keys_in_order() -> None:
    captured: Any = example("gamma_market_btc_updown_5m_nautilus.json")
    item = next(i for i in listing() if i.spec.slug.startswith("btc-updown-5m") and i.accepting_orders)
    obj = market_object(item, QUOTE)
    assert list(obj) == list(captured)
    assert list(obj["events"][0]) == list(captured["events"][0])
    assert list(obj["events"][0]["series"][0]) == list(captured["events"][0]["series"][0])
    for key, value in captured.items():
        assert type(obj[key]) is type(value), key
    assert obj["events"][0]["series"][0]["slug"] == "btc-up-or-down-5m"
    assert obj["events"][0]["startTime"] == obj["eventStartTime"]


def test_json_encoded_fields_and_ids() -> None:
    for item in listing():
        obj = market_object(item, QUOTE)
        outcomes, tokens = json.loads(obj["outcomes"]), json.loads(obj["clobTokenIds"])
        assert len(outcomes) == len(tokens) == len(json.loads(obj["outcomePrices"])) == 2
        assert all(t.isdigit() and 77 <= len(t) <= 78 for t in tokens)
        assert tokens == [token_id(item.spec.slug, label) for label in outcomes]
        assert obj["conditionId"].startswith("0x") and len(obj["conditionId"]) == 66
    labels = {tuple(json.loads(market_object(i, QUOTE)["outcomes"])) for i in listing()}
    assert ("Down", "Up") in labels and ("Up", "Down") in labels


def test_listing_has_zombies_closed_current_future_and_decoys() -> None:
    items = listing()
    five = [i for i in items if i.spec.slug.startswith("btc-updown-5m-")]
    assert [(i.closed, i.accepting_orders) for i in five] == [
        (True, False), (False, False), (False, True), (False, True), (False, True)
    ]  # fmt: skip
    assert five[1].spec.end <= NOW < five[2].spec.end
    slugs = [i.spec.slug for i in items]
    assert any(s.startswith("eth-updown-5m-") for s in slugs)
    assert any(s.startswith("will-bitcoin-reach") for s in slugs)
    assert "bitcoin-up-or-down-september-21-2026-10am-et" in slugs  # 14:13Z = 10:13AM EDT


def test_new_windows_appear_as_time_passes() -> None:
    before = {i.spec.slug for i in listing(NOW)}
    after = {i.spec.slug for i in listing(NOW + 300)}
    assert len(after - before) >= 1


def test_events_embed_markets() -> None:
    item = listing()[0]
    market = market_object(item, QUOTE, nested_event=False)
    event = event_object(item, liquidity=1.0, volume=2.0, markets=[market])
    assert event["markets"][0]["slug"] == item.spec.slug and "events" not in event["markets"][0]


def test_select_filters_orders_and_pages() -> None:
    items = listing()
    open_items = [i for i in items if not i.closed]
    assert len(select(items, [("limit", "1000")], "markets")) == min(100, len(open_items))
    slugs = [items[3].spec.slug, items[7].spec.slug]
    assert {i.spec.slug for i in select(items, [("slug", s) for s in slugs], "markets")} == set(slugs)
    ordered = select(items, [("order", "endDate"), ("ascending", "false")], "markets")
    assert [i.spec.end for i in ordered] == sorted((i.spec.end for i in open_items), reverse=True)
    window = select(
        items, [("end_date_min", "2026-09-21T14:14:00Z"), ("end_date_max", "2026-09-21T15:00:00Z")], "markets"
    )
    assert window and all(NOW < i.spec.end <= 1_790_002_800 for i in window)
    with pytest.raises(QueryError):
        select(items, [("closed", "maybe")], "markets")


def test_closed_defaults_to_false() -> None:
    items = listing()
    assert any(i.closed for i in items)
    assert all(not i.closed for i in select(items, [], "markets"))
    assert {i.spec.slug for i in select(items, [("closed", "true")], "markets")} == {
        i.spec.slug for i in items if i.closed
    }


def test_legacy_listing_refuses_offsets_past_2000_like_live_gamma() -> None:
    items = Catalog(["5m"], 3, 1, filler_markets=2500).listing(NOW)
    assert len(select(items, [("offset", "2000")], "markets")) == 100
    with pytest.raises(QueryError, match=r"^offset too large, use /markets/keyset for deeper pagination$"):
        select(items, [("offset", "2001")], "markets")


def test_order_takes_camel_case_fields_only() -> None:
    items = listing()
    assert select(items, [("order", "endDate")], "markets")
    for params in ([("order", "end_date")], [("order", "endDate,start_date")]):
        with pytest.raises(QueryError, match="^order fields are not valid$"):
            select(items, params, "markets")
        with pytest.raises(QueryError, match="^order fields are not valid$"):
            select_keyset(items, params, "markets")


def keyset_all(items: list[Any], params: list[tuple[str, str]]) -> tuple[list[Any], int]:
    """Every item through after_cursor paging, and the number of pages."""
    out: list[Any] = []
    cursor: str | None = None
    pages = 0
    while True:
        page, cursor = select_keyset(
            items, params + ([("after_cursor", cursor)] if cursor else []), "markets"
        )
        out.extend(page)
        pages += 1
        if cursor is None:
            return out, pages


def test_keyset_pages_follow_next_cursor_until_it_is_absent() -> None:
    items = Catalog(["5m"], 3, 1, filler_markets=250).listing(NOW)
    params = [("order", "endDate"), ("ascending", "true"), ("limit", "100")]
    got, pages = keyset_all(items, params)
    assert pages == 3
    assert got[:100] == select(items, [("order", "endDate"), ("limit", "100")], "markets")
    assert [i.spec.slug for i in got] == [i.spec.slug for i in sorted(
        (i for i in items if not i.closed), key=lambda i: (i.spec.end, i.spec.slug)
    )]  # fmt: skip
    descending, _ = keyset_all(items, [("order", "endDate"), ("ascending", "false"), ("limit", "7")])
    assert descending == got[::-1]


def test_keyset_caps_limit_at_100_and_refuses_offset() -> None:
    items = Catalog(["5m"], 3, 1, filler_markets=250).listing(NOW)
    page, cursor = select_keyset(items, [("limit", "500")], "markets")
    assert len(page) == 100 and cursor
    with pytest.raises(QueryError, match="offset"):
        select_keyset(items, [("offset", "0")], "markets")
    with pytest.raises(QueryError, match="after_cursor"):
        select_keyset(items, [("after_cursor", "not-a-cursor")], "markets")


def test_keyset_ignores_cursor_parameter() -> None:
    items = Catalog(["5m"], 3, 1, filler_markets=250).listing(NOW)
    first, cursor = select_keyset(items, [("limit", "10")], "markets")
    assert cursor is not None
    again, same = select_keyset(items, [("limit", "10"), ("cursor", cursor)], "markets")
    assert again == first and same == cursor
    second, _ = select_keyset(items, [("limit", "10"), ("after_cursor", cursor)], "markets")
    assert not set(second) & set(first)


def test_keyset_cursor_survives_markets_rolling_in() -> None:
    catalog = Catalog(["5m"], 3, 1, filler_markets=50)
    first, cursor = select_keyset(catalog.listing(NOW), [("order", "endDate"), ("limit", "10")], "markets")
    assert cursor is not None
    later = catalog.listing(NOW + 600)  # windows and fillers ended and appeared meanwhile
    second, _ = select_keyset(
        later, [("order", "endDate"), ("limit", "10"), ("after_cursor", cursor)], "markets"
    )
    assert second and min(i.spec.end for i in second) >= max(i.spec.end for i in first)


def test_filler_markets_are_open_non_btc_and_end_within_a_day() -> None:
    items = Catalog(["5m"], 3, 1, filler_markets=2500).listing(NOW)
    fillers = [i for i in items if i.spec.slug.startswith("filler-")]
    assert len(fillers) == 2500 and len({i.spec.slug for i in fillers}) == 2500
    assert all(i.spec.kind == "other" and not i.closed and NOW < i.spec.end <= NOW + 86400 for i in fillers)
