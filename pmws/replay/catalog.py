"""What the replay knows about the archived tokens, and the Gamma and CLOB answers built from it. Pure.

Token metadata comes from a discovery file (`pmws discover`'s output) when given, else from the envelopes'
`tokens_tracked` (slug, condition id, outcome, end time); REST `/books` summaries in the archive add
`min_order_size`, `tick_size` and `neg_risk`, which a client needs to verify WS book hashes (PROTOCOL.md
§5.3). Books are `pmws.book.BookState`s rebuilt by the replay's `BookTracker`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pmws.book import BookState
from pmws.markets import WINDOW_SECONDS, Market, iso, parse_time, window_of_slug

#: Outcome labels first in Gamma's `outcomes` (BTC up/down lists Up, then Down, §6.2).
OUTCOME_ORDER = {"up": 0, "yes": 0, "down": 1, "no": 1}


@dataclass
class TokenInfo:
    """One archived token with its market."""

    token_id: str
    market_slug: str = ""
    condition_id: str = ""
    outcome: str = ""
    end_time_utc: str = ""
    window_start_utc: str | None = None
    question: str = ""
    gamma_id: str = ""
    min_order_size: str = ""
    tick_size: str = ""
    neg_risk: bool = False


class Catalog:
    """Every token the archive (or discovery file) names, by token id."""

    def __init__(self) -> None:
        self.tokens: dict[str, TokenInfo] = {}

    def _info(self, token_id: str) -> TokenInfo:
        info = self.tokens.get(token_id)
        if info is None:
            info = self.tokens[token_id] = TokenInfo(token_id)
        return info

    def add_market(self, market: Market) -> None:
        """A market from a discovery file: everything Gamma said about it."""
        for token in market.tokens:
            info = self._info(token.token_id)
            info.market_slug, info.condition_id, info.outcome = (
                market.market_slug,
                market.condition_id,
                token.outcome,
            )
            info.end_time_utc, info.window_start_utc = market.end_time_utc, market.window_start_utc
            info.question, info.gamma_id = market.question, market.gamma_id
            info.min_order_size = info.min_order_size or market.min_order_size
            info.tick_size = info.tick_size or market.tick_size
            info.neg_risk = info.neg_risk or market.neg_risk

    def add_tracked(self, tracked: dict[str, Any]) -> None:
        """An envelope's `tokens_tracked` entry; fills only what is not known yet."""
        token_id = tracked.get("token_id")
        if not isinstance(token_id, str):
            return
        info = self._info(token_id)
        info.market_slug = info.market_slug or str(tracked.get("market_slug", ""))
        info.condition_id = info.condition_id or str(tracked.get("condition_id", ""))
        info.outcome = info.outcome or str(tracked.get("outcome", ""))
        info.end_time_utc = info.end_time_utc or str(tracked.get("end_time_utc", ""))

    def add_summary(self, summary: dict[str, Any]) -> None:
        """A REST `/books` summary: the fields the WS book hash needs (§5.3)."""
        token_id = summary.get("asset_id")
        if not isinstance(token_id, str):
            return
        info = self._info(token_id)
        info.condition_id = info.condition_id or str(summary.get("market", ""))
        if summary.get("min_order_size"):
            info.min_order_size = str(summary["min_order_size"])
        if summary.get("tick_size") and not info.tick_size:
            info.tick_size = str(summary["tick_size"])
        if isinstance(summary.get("neg_risk"), bool):
            info.neg_risk = summary["neg_risk"]

    def market_of(self, token_id: str) -> str:
        info = self.tokens.get(token_id)
        return info.condition_id if info is not None else ""

    def gamma_markets(self, *, slugs: set[str] | None = None, shift_ns: int = 0) -> list[dict[str, Any]]:
        """Gamma market objects, one per market with a slug, ordered by end time then slug; `shift_ns` moves
        their times (`endDate`, `eventStartTime`) by that much (`pmws replay --shift-to`)."""
        by_market: dict[str, list[TokenInfo]] = {}
        for info in self.tokens.values():
            if info.market_slug and info.condition_id and (slugs is None or info.market_slug in slugs):
                by_market.setdefault(info.condition_id, []).append(info)
        objects = [shifted(gamma_object(infos), shift_ns) for infos in by_market.values()]
        return sorted(objects, key=lambda o: (o["endDate"], o["slug"]))


#: The Gamma fields `--shift-to` moves (the slug keeps its archived window start: it names the market).
SHIFTED_FIELDS = ("endDate", "eventStartTime")


def shifted(market: dict[str, Any], shift_ns: int) -> dict[str, Any]:
    """A Gamma market object with its times moved by `shift_ns` (microsecond precision, as `iso`)."""
    if not shift_ns:
        return market
    by = timedelta(microseconds=shift_ns // 1000)
    for key in SHIFTED_FIELDS:
        text = market.get(key)
        if isinstance(text, str):
            try:
                market[key] = iso(parse_time(text) + by)
            except ValueError:
                continue
    return market


def gamma_object(infos: list[TokenInfo]) -> dict[str, Any]:
    """One Gamma market object (the fields `pmws.markets.parse_market` and clients read, §6.2)."""
    infos = sorted(infos, key=lambda i: (OUTCOME_ORDER.get(i.outcome.lower(), 2), i.outcome))
    first = infos[0]
    out: dict[str, Any] = {
        "id": first.gamma_id or first.condition_id,
        "question": first.question or first.market_slug,
        "conditionId": first.condition_id,
        "slug": first.market_slug,
        "endDate": first.end_time_utc,
        "outcomes": json.dumps([i.outcome for i in infos]),
        "clobTokenIds": json.dumps([i.token_id for i in infos]),
        "active": True,
        "closed": False,
        "acceptingOrders": True,
        "enableOrderBook": True,
        "negRisk": first.neg_risk,
    }
    start = first.window_start_utc or _window_start(first)
    if start:
        out["eventStartTime"] = start
    for key, text in (("orderMinSize", first.min_order_size), ("orderPriceMinTickSize", first.tick_size)):
        if text:
            out[key] = _number(text)
    return out


def _window_start(info: TokenInfo) -> str | None:
    """The window start implied by the slug and end time (5m/15m/1h/4h), if both are known."""
    window = window_of_slug(info.market_slug)
    try:
        end = parse_time(info.end_time_utc)
    except ValueError:
        return None
    if window is None:
        return None
    return iso(end - timedelta(seconds=WINDOW_SECONDS[window]))


def _number(text: str) -> float | str:
    """Gamma sends numbers; keep the text when a float would not give it back (§7: exact strings)."""
    try:
        value = float(text)
    except ValueError:
        return text
    back = str(int(value)) if value.is_integer() else str(value)
    return value if back == text else text


def book_event(book: BookState) -> dict[str, Any]:
    """A `book` event of the rebuilt state, in the initial dump's key order (§3.1)."""
    return {
        "market": book.market,
        "asset_id": book.asset_id,
        "timestamp": book.timestamp,
        "hash": book.hash(),
        **_levels(book),
        "tick_size": book.tick_size,
        "event_type": "book",
        "last_trade_price": book.last_trade_price,
    }


def book_summary(book: BookState) -> dict[str, Any]:
    """The REST `/books` summary of the rebuilt state, in the documented field order (§4.3)."""
    return {
        "market": book.market,
        "asset_id": book.asset_id,
        "timestamp": book.timestamp,
        "hash": book.hash(),
        **_levels(book),
        "min_order_size": book.min_order_size,
        "tick_size": book.tick_size,
        "neg_risk": book.neg_risk,
        "last_trade_price": book.last_trade_price,
    }


def _levels(book: BookState) -> dict[str, list[dict[str, str]]]:
    """`bids` ascending and `asks` descending, best last, as on the wire (§0.6)."""
    return {
        "bids": [{"price": p, "size": s} for p, s in book.wire_bids()],
        "asks": [{"price": p, "size": s} for p, s in book.wire_asks()],
    }
