"""Gamma market objects → live BTC up/down markets (PROTOCOL.md §6). Pure: the clock is an argument.

Gamma encodes `clobTokenIds` and `outcomes` as JSON strings (§6.2); Up/Down are mapped by the outcome label at
the same index, never by position (§6.4). Zombie windows (`closed=false` long after they ended) are
filtered by `acceptingOrders` and a window end in the future.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pmws.envelope import TrackedToken
from pmws.sharding import shard_of

NEW_YORK = ZoneInfo("America/New_York")
WINDOW_SECONDS = {"5m": 300, "15m": 900, "1h": 3600, "4h": 14400}
MONTHS = "january february march april may june july august september october november december".split()
_SHORT_SLUG = re.compile(r"^btc-updown-(5m|15m|4h)-(\d{9,11})$")
_HOURLY_SLUG = re.compile(
    r"^bitcoin-up-or-down-(" + "|".join(MONTHS) + r")-(\d{1,2})(?:-(\d{4}))?-(\d{1,2})(am|pm)-et$"
)


@dataclass(frozen=True)
class Token:
    token_id: str
    outcome: str


@dataclass
class Market:
    """One BTC up/down window as recorded in the discovery file."""

    market_slug: str
    condition_id: str
    question: str
    window: str
    window_start_utc: str | None
    end_time_utc: str
    tokens: list[Token]
    min_order_size: str = ""
    tick_size: str = ""
    neg_risk: bool = False
    gamma_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Market:
        tokens = [Token(str(t["token_id"]), str(t["outcome"])) for t in data["tokens"]]
        return cls(
            market_slug=str(data["market_slug"]),
            condition_id=str(data["condition_id"]),
            question=str(data.get("question", "")),
            window=str(data.get("window", "")),
            window_start_utc=data.get("window_start_utc"),
            end_time_utc=str(data["end_time_utc"]),
            tokens=tokens,
            min_order_size=str(data.get("min_order_size", "")),
            tick_size=str(data.get("tick_size", "")),
            neg_risk=bool(data.get("neg_risk", False)),
            gamma_id=str(data.get("gamma_id", "")),
        )

    @property
    def end(self) -> datetime:
        return parse_time(self.end_time_utc)

    @property
    def start(self) -> datetime | None:
        return parse_time(self.window_start_utc) if self.window_start_utc else None

    def token_ids(self) -> list[str]:
        return [t.token_id for t in self.tokens]

    def tracked(self) -> tuple[TrackedToken, ...]:
        """The market's tokens as the feed context and the view name them."""
        return tuple(
            TrackedToken(self.market_slug, self.condition_id, t.token_id, t.outcome, self.end_time_utc)
            for t in self.tokens
        )

    def has_both_outcomes(self) -> bool:
        labels = {t.outcome.lower() for t in self.tokens}
        return len(self.tokens) == 2 and labels == {"up", "down"}


class MarketRejected(ValueError):
    """A Gamma object that is not a usable BTC up/down market; the message says why."""


def window_of_slug(slug: str) -> str | None:
    """'5m' | '15m' | '1h' | '4h' for a BTC up/down slug (§6.3), else None."""
    match = _SHORT_SLUG.match(slug)
    if match:
        return match.group(1)
    if _HOURLY_SLUG.match(slug):
        return "1h"
    return None


def slug_for_window(window: str, start: datetime) -> str:
    """The Gamma slug of the window starting at `start` (§6.3)."""
    if window == "1h":
        local = start.astimezone(NEW_YORK)
        hour12 = local.hour % 12 or 12
        ampm = "am" if local.hour < 12 else "pm"
        month = MONTHS[local.month - 1]
        return f"bitcoin-up-or-down-{month}-{local.day}-{local.year}-{hour12}{ampm}-et"
    return f"btc-updown-{window}-{int(start.timestamp())}"


def window_starts(window: str, now: datetime, *, count: int) -> list[datetime]:
    """Starts of the current window and the `count - 1` following ones.

    5m/15m/1h windows align to the epoch (UTC); 4h windows start at 0/4/8/12/16/20h New York time
    (`btc-updown-4h-1772442000` is 4:00AM EST), so they are aligned in local time.
    """
    seconds = WINDOW_SECONDS[window]
    if window == "4h":
        local = now.astimezone(NEW_YORK)
        first_local = local.replace(hour=local.hour - local.hour % 4, minute=0, second=0, microsecond=0)
        starts = []
        for i in range(count):
            naive = first_local.replace(tzinfo=None) + timedelta(hours=4 * i)
            starts.append(naive.replace(tzinfo=NEW_YORK).astimezone(UTC))
        return starts
    epoch = int(now.timestamp())
    first = epoch - epoch % seconds
    return [datetime.fromtimestamp(first + i * seconds, tz=UTC) for i in range(count)]


def parse_time(text: str | None) -> datetime:
    """ISO 8601 (with Z or offset, or a bare date) → aware UTC datetime."""
    if not text:
        raise ValueError("missing time")
    value = text.strip().replace("Z", "+00:00")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso(dt: datetime) -> str:
    """UTC ISO 8601 with a Z, second precision or finer as given."""
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_list(value: Any, name: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError as exc:
            raise MarketRejected(f"{name} is not valid JSON") from exc
        if isinstance(decoded, list):
            return decoded
    raise MarketRejected(f"{name} is missing or not a list")


def parse_market(obj: Any) -> Market:
    """A Gamma market object → Market, or MarketRejected (not BTC up/down, or malformed)."""
    if not isinstance(obj, dict):
        raise MarketRejected("not an object")
    slug = obj.get("slug")
    if not isinstance(slug, str):
        raise MarketRejected("no slug")
    window = window_of_slug(slug)
    if window is None:
        raise MarketRejected("not a BTC up/down slug")
    condition_id = obj.get("conditionId")
    if not isinstance(condition_id, str) or not condition_id:
        raise MarketRejected("no conditionId")
    token_ids = _json_list(obj.get("clobTokenIds"), "clobTokenIds")
    outcomes = _json_list(obj.get("outcomes"), "outcomes")
    if len(token_ids) != 2 or len(outcomes) != 2:
        raise MarketRejected("expected two tokens and two outcomes")
    tokens = [Token(str(t), str(o)) for t, o in zip(token_ids, outcomes, strict=True)]
    try:
        end = parse_time(obj.get("endDate"))
    except ValueError as exc:
        raise MarketRejected("endDate missing or not a time") from exc
    start_text = obj.get("eventStartTime") or _event_start(obj)
    try:
        start = parse_time(start_text) if start_text else None
    except ValueError:
        start = None
    if start is None:
        start = end - timedelta(seconds=WINDOW_SECONDS[window])
    return Market(
        market_slug=slug,
        condition_id=condition_id,
        question=str(obj.get("question", "")),
        window=window,
        window_start_utc=iso(start),
        end_time_utc=iso(end),
        tokens=tokens,
        min_order_size=_decimal_text(obj.get("orderMinSize")),
        tick_size=_decimal_text(obj.get("orderPriceMinTickSize")),
        neg_risk=bool(obj.get("negRisk", False)),
        gamma_id=str(obj.get("id", "")),
    )


def _event_start(obj: dict[str, Any]) -> str | None:
    events = obj.get("events")
    if isinstance(events, list) and events and isinstance(events[0], dict):
        value = events[0].get("startTime")
        return value if isinstance(value, str) else None
    return None


def _decimal_text(value: Any) -> str:
    """Gamma numbers → the string form the book hash uses (5 → "5", 0.01 → "0.01")."""
    if value is None or value == "":
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def rejection_reason(obj: dict[str, Any], market: Market, now: datetime) -> str | None:
    """Why a parsed market is not live now (zombie, closed, not accepting orders), or None."""
    if obj.get("closed") is True:
        return "closed"
    if obj.get("active") is False:
        return "inactive"
    if obj.get("acceptingOrders") is False:
        return "not accepting orders"
    if obj.get("enableOrderBook") is False:
        return "order book disabled"
    if market.end <= now:
        return "window ended"
    if not market.has_both_outcomes():
        return "outcomes are not Up/Down"
    return None


@dataclass
class DiscoveryResult:
    """Live markets plus what was skipped and why."""

    markets: list[Market]
    seen: int = 0
    skipped_not_btc: int = 0
    skipped_malformed: int = 0
    skipped_not_live: dict[str, int] = field(default_factory=dict)
    malformed_examples: list[str] = field(default_factory=list)


def filter_live(objects: list[Any], now: datetime, *, windows: list[str] | None = None) -> DiscoveryResult:
    """Keep live BTC up/down markets (of `windows`, if given), de-duplicated, ordered by window end."""
    result = DiscoveryResult(markets=[])
    by_condition: dict[str, Market] = {}
    for obj in objects:
        result.seen += 1
        try:
            market = parse_market(obj)
        except MarketRejected as exc:
            if str(exc) in ("not a BTC up/down slug", "no slug") and isinstance(obj, dict):
                result.skipped_not_btc += 1
            else:
                result.skipped_malformed += 1
                if len(result.malformed_examples) < 5:
                    slug = obj.get("slug") if isinstance(obj, dict) else None
                    result.malformed_examples.append(f"{slug or '?'}: {exc}")
            continue
        reason = rejection_reason(obj, market, now)
        if reason is None and windows is not None and market.window not in windows:
            reason = "window not configured"
        if reason:
            result.skipped_not_live[reason] = result.skipped_not_live.get(reason, 0) + 1
            continue
        by_condition[market.condition_id] = market
    result.markets = sorted(by_condition.values(), key=lambda m: (m.end, m.market_slug))
    return result


def select_markets(markets: list[Market], *, limit: int, now: datetime, run_seconds: float) -> list[Market]:
    """Up to `limit` markets with both tokens whose window outlasts the run; trading windows first."""
    horizon = now + timedelta(seconds=run_seconds)
    usable = [m for m in markets if m.has_both_outcomes() and m.end > horizon]

    def rank(m: Market) -> tuple[int, datetime]:
        started = m.start is not None and m.start <= now
        return (0 if started else 1, m.end)

    return sorted(usable, key=rank)[:limit]


def tracked_tokens(markets: list[Market]) -> tuple[TrackedToken, ...]:
    return tuple(token for market in markets for token in market.tracked())


def lookahead_seconds(subscribe_ahead_seconds: int, windows: list[str]) -> int:
    """How far ahead to ask Gamma: a window starting within the horizon ends at most one window after it."""
    return subscribe_ahead_seconds + max(WINDOW_SECONDS[w] for w in windows)


def shard_markets(
    markets: list[Market], *, now: datetime, ahead_seconds: float, shard_index: int, shard_count: int
) -> list[Market]:
    """The markets this shard records that start within `ahead_seconds` (or have no start)."""
    horizon = now + timedelta(seconds=ahead_seconds)
    return [
        m
        for m in markets
        if (m.start is None or m.start <= horizon) and shard_of(m.condition_id, shard_count) == shard_index
    ]


def desired_markets(
    live: list[Market],
    *,
    recorded: dict[str, Market],
    resolved: set[str],
    now: datetime,
    grace_seconds: float,
) -> dict[str, Market]:
    """Live markets, plus recorded ones Gamma stopped listing until resolved or `grace_seconds` past end.

    Keyed by condition id; a resolved market is never desired again.
    """
    grace = timedelta(seconds=grace_seconds)
    desired = {m.condition_id: m for m in live if m.condition_id not in resolved}
    for condition, market in recorded.items():
        if condition in desired or condition in resolved:
            continue
        if now < market.end + grace:
            desired[condition] = market
    return desired
