"""Gamma `/markets` and `/events` objects and queries (PROTOCOL.md §6).

Market objects follow examples/gamma_market_btc_updown_5m_nautilus.json key for key: camelCase,
`clobTokenIds`/`outcomes`/`outcomePrices` as JSON-encoded strings (§6.2), an embedded event with its series.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pmws.sim.catalog import SERIES_IDS, Listed, MarketSpec, digest
from pmws.sim.engine import description_of
from pmws.sim.windows import iso_z

IMAGE = "https://polymarket-upload.s3.us-east-2.amazonaws.com/BTC+fullsize.png"
CHAINLINK = "https://data.chain.link/streams/btc-usd"
BINANCE = "https://www.binance.com/en/trade/BTC_USDT"  # hourly windows resolve on the 1h candle (§6.3)
MAX_LIMIT = {"markets": 100, "events": 500}  # /markets caps limit at 100 (§6.1, [S26])
MAX_OFFSET = 2000  # the legacy listings answer 422 past this offset (§6.1, [P7])
#: Headers of the deprecated offset listings (§6.1, [P7]).
DEPRECATION_HEADERS = [("deprecation", "true"), ("sunset", "Fri, 01 May 2026 00:00:00 GMT")]

#: (best_bid, best_ask, last_trade_price, tick) of the first outcome's token, as numbers.
Quote = tuple[float, float, float | None, float]


class QueryError(ValueError):
    """A bad query parameter: Gamma answers 422."""


def _stats(spec: MarketSpec) -> random.Random:
    """A per-market RNG for volume/liquidity figures."""
    return random.Random(digest(f"stats:{spec.slug}"))


def _resolution_source(spec: MarketSpec) -> str:
    """Chainlink for 5m/15m/4h, Binance for hourly windows (§6.2, §6.3)."""
    if spec.kind == "other":
        return ""
    return BINANCE if spec.window == "1h" else CHAINLINK


def market_object(item: Listed, quote: Quote, *, nested_event: bool = True) -> dict[str, Any]:
    """One Gamma market object as of `item`'s listing."""
    spec = item.spec
    rng = _stats(spec)
    liquidity = round(rng.uniform(2000, 60000), 4)
    volume = round(rng.uniform(1, 90000), 6)
    bid, ask, ltp, tick = quote
    mid = round((bid + ask) / 2, 3)
    prices = [f"{mid:g}", f"{round(1 - mid, 3):g}"]
    created = spec.created - 70.2
    out: dict[str, Any] = {
        "id": spec.market_id,
        "question": spec.question,
        "conditionId": spec.condition_id,
        "slug": spec.slug,
        "resolutionSource": _resolution_source(spec),
        "endDate": iso_z(spec.end),
        "liquidity": f"{liquidity}",
        "startDate": iso_z(spec.created, micro=True),
        "image": IMAGE,
        "icon": IMAGE,
        "description": description_of(spec),
        "outcomes": json.dumps(list(spec.outcomes)),
        "outcomePrices": json.dumps(prices),
        "volume": f"{volume}",
        "active": True,
        "closed": item.closed,
        "marketMakerAddress": "",
        "createdAt": iso_z(created, micro=True),
        "updatedAt": iso_z(spec.created + 20805.4, micro=True),
        "new": False,
        "featured": False,
        "archived": False,
        "restricted": True,
        "groupItemThreshold": "0",
        "questionID": "0x" + digest(f"question:{spec.slug}").hex(),
        "enableOrderBook": True,
        "orderPriceMinTickSize": tick,
        "orderMinSize": 5,
        "volumeNum": volume,
        "liquidityNum": liquidity,
        "endDateIso": iso_z(spec.end)[:10],
        "startDateIso": iso_z(spec.created)[:10],
        "hasReviewedDates": True,
        "volume24hr": volume,
        "volume1wk": volume,
        "volume1mo": volume,
        "volume1yr": volume,
        "clobTokenIds": json.dumps(list(spec.token_ids)),
        "volume24hrClob": volume,
        "volume1wkClob": volume,
        "volume1moClob": volume,
        "volume1yrClob": volume,
        "volumeClob": volume,
        "liquidityClob": liquidity,
        "makerBaseFee": 1000 if spec.window else 0,
        "takerBaseFee": 1000 if spec.window else 0,
        "acceptingOrders": item.accepting_orders and not item.closed,
        "negRisk": False,
    }
    if nested_event:
        out["events"] = [event_object(item, liquidity=liquidity, volume=volume)]
    out.update(
        {
            "ready": False,
            "funded": False,
            "acceptingOrdersTimestamp": iso_z(int(created) + 4),
            "cyom": False,
            "competitive": 0.9999750006249843,
            "pagerDutyNotificationEnabled": False,
            "approved": True,
            "rewardsMinSize": 50,
            "rewardsMaxSpread": 4.5,
            "spread": round(ask - bid, 3),
            "lastTradePrice": ltp if ltp is not None else 0,
            "bestBid": bid,
            "bestAsk": ask,
            "automaticallyActive": True,
            "clearBookOnStart": False,
            "showGmpSeries": False,
            "showGmpOutcome": False,
            "manualActivation": False,
            "negRiskOther": False,
            "umaResolutionStatuses": "[]",
            "pendingDeployment": False,
            "deploying": False,
            "rfqEnabled": False,
        }
    )
    if spec.window:
        out["eventStartTime"] = iso_z(spec.start)
    out.update(
        {
            "holdingRewardsEnabled": False,
            "feesEnabled": bool(spec.window),
            "requiresTranslation": False,
            "makerRebatesFeeShareBps": 10000,
        }
    )
    if spec.window:
        out["feeType"] = "crypto_fees"
    return out


def event_object(
    item: Listed, *, liquidity: float, volume: float, markets: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The event a market belongs to (one market per up/down event), with its series (§6.2)."""
    spec = item.spec
    event: dict[str, Any] = {
        "id": spec.event_id,
        "ticker": spec.slug,
        "slug": spec.slug,
        "title": spec.question,
        "description": description_of(spec),
        "resolutionSource": _resolution_source(spec),
        "startDate": iso_z(spec.created + 36.1, micro=True),
        "creationDate": iso_z(spec.created + 36.09, micro=True),
        "endDate": iso_z(spec.end),
        "image": IMAGE,
        "icon": IMAGE,
        "active": True,
        "closed": item.closed,
        "archived": False,
        "new": False,
        "featured": False,
        "restricted": True,
        "liquidity": liquidity,
        "volume": volume,
        "openInterest": 0,
        "createdAt": iso_z(spec.created - 70.3, micro=True),
        "updatedAt": iso_z(spec.created + 20732.5, micro=True),
        "competitive": 0.9999750006249843,
        "volume24hr": volume,
        "volume1wk": volume,
        "volume1mo": volume,
        "volume1yr": volume,
        "enableOrderBook": True,
        "liquidityClob": liquidity,
        "negRisk": False,
        "commentCount": 0,
    }
    if markets is not None:
        event["markets"] = markets
    if spec.window:
        event["series"] = [series_object(spec)]
    event.update(
        {
            "cyom": False,
            "showAllOutcomes": True,
            "showMarketImages": True,
            "enableNegRisk": False,
            "automaticallyActive": True,
        }
    )
    if spec.window:
        event["startTime"] = iso_z(spec.start)
        event["seriesSlug"] = spec.series_slug
    event.update(
        {
            "negRiskAugmented": False,
            "pendingDeployment": False,
            "deploying": False,
            "requiresTranslation": False,
        }
    )
    return event


def series_object(spec: MarketSpec) -> dict[str, Any]:
    """The recurring series of an up/down window (`btc-up-or-down-5m`, recurrence `5m`)."""
    window = spec.window or ""
    name = "BTC" if spec.kind == "btc" else "ETH"
    series_id = SERIES_IDS[window] if spec.kind == "btc" else str(int(SERIES_IDS[window]) + 1)
    return {
        "id": series_id,
        "ticker": spec.series_slug,
        "slug": spec.series_slug,
        "title": f"{name} Up or Down {window}",
        "seriesType": "single",
        "recurrence": window,
        "image": "",
        "icon": "",
        "active": True,
        "closed": False,
        "archived": False,
        "featured": False,
        "restricted": True,
        "createdAt": "2025-11-21T21:46:22.201627Z",
        "updatedAt": iso_z(spec.created + 20744.4, micro=True),
        "volume24hr": 42805542.367599964,
        "volume": 64234.19264499972,
        "liquidity": 6011579.0442,
        "commentCount": 27205,
        "requiresTranslation": False,
    }


# --- queries -------------------------------------------------------------------------------------------


def _one(params: list[tuple[str, str]], name: str) -> str | None:
    """The last value of a query parameter."""
    values = [v for k, v in params if k == name]
    return values[-1] if values else None


def _int(params: list[tuple[str, str]], name: str, default: int) -> int:
    """A non-negative integer parameter."""
    raw = _one(params, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise QueryError(f"{name} must be an integer") from exc
    if value < 0:
        raise QueryError(f"{name} must not be negative")
    return value


def _bool(params: list[tuple[str, str]], name: str) -> bool | None:
    """A true/false parameter, None when absent."""
    raw = _one(params, name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise QueryError(f"{name} must be true or false")


def _time(params: list[tuple[str, str]], name: str) -> float | None:
    """An ISO 8601 parameter as epoch seconds, None when absent."""
    raw = _one(params, name)
    if raw is None or raw == "":
        return None
    try:
        parsed = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise QueryError(f"{name} must be an ISO 8601 date") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _sort_key(field_name: str) -> Callable[[Listed], Any]:
    """The sort key for an `order` field: camelCase names only, like live Gamma (§6.1)."""
    keys: dict[str, Callable[[Listed], Any]] = {
        "id": lambda i: int(i.spec.market_id),
        "endDate": lambda i: i.spec.end,
        "startDate": lambda i: i.spec.created,
        "eventStartTime": lambda i: i.spec.start,
        "slug": lambda i: i.spec.slug,
        "volume": lambda i: _stats(i.spec).uniform(2000, 60000),
        "liquidity": lambda i: _stats(i.spec).uniform(2000, 60000),
    }
    if field_name not in keys:
        raise QueryError("order fields are not valid")
    return keys[field_name]


def _filtered(items: list[Listed], params: list[tuple[str, str]]) -> list[Listed]:
    """Filter and order a listing like Gamma (ties broken by slug); `closed` defaults to false (§6.1)."""
    closed, active = _bool(params, "closed"), _bool(params, "active")
    closed = False if closed is None else closed
    end_min, end_max = _time(params, "end_date_min"), _time(params, "end_date_max")
    slugs = {v for k, v in params if k in ("slug", "slug[]")}
    keys = [_sort_key(f.strip()) for f in (_one(params, "order") or "id").split(",") if f.strip()]
    ascending = _bool(params, "ascending")
    chosen = [
        item
        for item in items
        if item.closed == closed
        and (active is None or active)  # every listed market is active=true
        and (not slugs or item.spec.slug in slugs)
        and (end_min is None or item.spec.end >= end_min)
        and (end_max is None or item.spec.end <= end_max)
    ]
    chosen.sort(key=lambda i: (*(k(i) for k in keys), i.spec.slug), reverse=ascending is False)
    return chosen


def select(items: list[Listed], params: list[tuple[str, str]], kind: str) -> list[Listed]:
    """The legacy offset listing (`/markets`, `/events`); raises QueryError for a 422.

    Past offset 2,000 live Gamma answers 422 and points at the keyset endpoint (§6.1, [P7]).
    """
    limit = min(_int(params, "limit", MAX_LIMIT[kind]), MAX_LIMIT[kind])
    offset = _int(params, "offset", 0)
    if offset > MAX_OFFSET:
        raise QueryError(f"offset too large, use /{kind}/keyset for deeper pagination")
    return _filtered(items, params)[offset : offset + limit]


def select_keyset(
    items: list[Listed], params: list[tuple[str, str]], kind: str
) -> tuple[list[Listed], str | None]:
    """A keyset page (`/markets/keyset`) and the `next_cursor` (None on the last page); QueryError → 422.

    `after_cursor` continues after the previous page; `offset` is refused; `cursor=` is ignored, as live
    (§6.1, [S27][I22]). The cursor names the last item's position, so markets listed or delisted between
    pages neither repeat nor shift the rest.
    """
    if _one(params, "offset") is not None:
        raise QueryError("offset is not allowed on keyset endpoints, use after_cursor")
    limit = min(_int(params, "limit", MAX_LIMIT[kind]), MAX_LIMIT[kind])
    keys = [_sort_key(f.strip()) for f in (_one(params, "order") or "id").split(",") if f.strip()]
    descending = _bool(params, "ascending") is False
    chosen = _filtered(items, params)
    after = _one(params, "after_cursor")
    if after:
        last = _decode_cursor(after)
        try:
            chosen = [i for i in chosen if _after(_position(i, keys), last, descending=descending)]
        except TypeError as exc:  # a cursor from another `order`
            raise QueryError("invalid after_cursor") from exc
    page = chosen[:limit]
    if len(chosen) <= limit or not page:
        return page, None
    return page, _encode_cursor(_position(page[-1], keys))


def _position(item: Listed, keys: list[Callable[[Listed], Any]]) -> list[Any]:
    """Where an item sits in an ordered listing: its sort keys, then its slug (unique)."""
    return [*(k(item) for k in keys), item.spec.slug]


def _after(position: list[Any], last: list[Any], *, descending: bool) -> bool:
    """Whether `position` comes after the cursor's `last` in the listing's direction."""
    return position < last if descending else position > last


def _encode_cursor(position: list[Any]) -> str:
    """An opaque cursor: the sort position of the last item served."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list[Any]:
    """The position inside a cursor; QueryError for anything we did not hand out."""
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise QueryError("invalid after_cursor") from exc
    if not isinstance(position, list) or not position:
        raise QueryError("invalid after_cursor")
    return position
