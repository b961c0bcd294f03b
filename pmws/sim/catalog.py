"""Which markets exist at a given time: BTC windows that roll with the clock, plus decoys (PROTOCOL.md §6)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from pmws.sim.windows import WINDOW_SECONDS, align, btc_slug, following, preceding, updown_title

#: Series ids per window; 5m is the captured one [C5], the others are made up.
SERIES_IDS = {"5m": "10684", "15m": "10192", "1h": "10114", "4h": "10331"}
CLOSED_PER_WINDOW = 1  # ended windows listed with closed=true, behind the zombies
DAY = 86400


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """The immutable identity of one market (its status depends on the time it is listed at)."""

    slug: str
    kind: str  # "btc" | "eth" | "other"
    window: str | None  # "5m" … for up/down windows, None for decoys
    start: int  # window start (epoch s); listing time for decoys
    end: int
    created: float  # Gamma `startDate`: listing ~24 h before the window (§6.2)
    question: str
    outcomes: tuple[str, str]
    token_ids: tuple[str, str]  # index-aligned with outcomes (clients must map by label, §6.4)
    condition_id: str
    market_id: str
    event_id: str

    @property
    def series_slug(self) -> str | None:
        """`btc-up-or-down-5m` etc. for up/down windows."""
        if self.window is None:
            return None
        return f"{self.kind}-up-or-down-{self.window}"


@dataclass(frozen=True, slots=True)
class Listed:
    """A market as listed at some moment."""

    spec: MarketSpec
    closed: bool
    accepting_orders: bool


def digest(text: str) -> bytes:
    """SHA-256 of a string: the root of every deterministic id."""
    return hashlib.sha256(text.encode()).digest()


def token_id(slug: str, outcome: str) -> str:
    """A 77/78-digit decimal token id derived from the slug and outcome label."""
    value = int.from_bytes(digest(f"token:{slug}:{outcome}") * 2, "big")
    return str(10**76 + value % (10**78 - 10**76))


def condition_id(slug: str) -> str:
    """`0x` + 64 hex, derived from the slug."""
    return "0x" + digest(f"condition:{slug}").hex()


def _outcomes(slug: str, labels: tuple[str, str]) -> tuple[str, str]:
    """About one market in three lists its outcomes the other way round."""
    return (labels[1], labels[0]) if digest(f"order:{slug}")[0] % 3 == 0 else labels


def make_spec(
    *, slug: str, kind: str, window: str | None, start: int, end: int, question: str, labels: tuple[str, str]
) -> MarketSpec:
    """Derive every id of a market from its slug."""
    outcomes = _outcomes(slug, labels)
    created = start - DAY + 60 + digest(f"created:{slug}")[0] * 3 + 0.328428
    kind_code = {"btc": 1, "eth": 5, "other": 8}[kind]
    window_code = list(WINDOW_SECONDS).index(window) if window else digest(slug)[0] % 10
    market_id = (start // 60) * 100 + kind_code * 10 + window_code
    return MarketSpec(
        slug=slug,
        kind=kind,
        window=window,
        start=start,
        end=end,
        created=created,
        question=question,
        outcomes=outcomes,
        token_ids=(token_id(slug, outcomes[0]), token_id(slug, outcomes[1])),
        condition_id=condition_id(slug),
        market_id=str(market_id),
        event_id=str(market_id // 10 + 7),
    )


class Catalog:
    """Every market the simulator has ever listed, and the listing at a given time."""

    def __init__(
        self,
        windows: list[str],
        markets_per_window: int,
        past_markets_per_window: int,
        filler_markets: int = 0,
    ) -> None:
        unknown = [w for w in windows if w not in WINDOW_SECONDS]
        if unknown:
            raise ValueError(f"unknown windows {unknown}; use {sorted(WINDOW_SECONDS)}")
        self.windows = list(windows)
        self.ahead = max(1, markets_per_window)
        self.past = max(0, past_markets_per_window)
        self.filler = max(0, filler_markets)
        self.by_slug: dict[str, MarketSpec] = {}
        self.by_token: dict[str, MarketSpec] = {}

    def listing(self, now: float) -> list[Listed]:
        """Markets listed at `now`: closed, zombie, current and future windows, then decoys."""
        out: list[Listed] = []
        for window in self.windows:
            out.extend(self._btc_windows(window, now))
        out.extend(self._decoys(now))
        out.extend(self._fillers(now))
        return out

    def lookup_token(self, token: str, now: float) -> MarketSpec | None:
        """The market of a token listed now or at any earlier listing."""
        spec = self.by_token.get(token)
        if spec is None:
            self.listing(now)
            spec = self.by_token.get(token)
        return spec

    def _remember(self, spec: MarketSpec) -> MarketSpec:
        """Keep a spec and index its tokens; an already known slug wins."""
        known = self.by_slug.setdefault(spec.slug, spec)
        for token in known.token_ids:
            self.by_token[token] = known
        return known

    def _btc_windows(self, window: str, now: float) -> list[Listed]:
        """Closed, zombie, current and following windows of one duration."""
        current = align(window, now)
        starts = [current]
        for _ in range(self.past + CLOSED_PER_WINDOW):
            starts.insert(0, preceding(window, starts[0]))
        while len(starts) < self.past + CLOSED_PER_WINDOW + self.ahead:
            starts.append(following(window, starts[-1]))
        out = []
        for index, start in enumerate(starts):
            spec = self._btc_spec(window, start)
            closed = index < CLOSED_PER_WINDOW
            out.append(Listed(spec, closed=closed, accepting_orders=spec.end > now))
        return out

    def _btc_spec(self, window: str, start: int) -> MarketSpec:
        """The spec of the BTC window starting at `start` (memoised)."""
        slug = btc_slug(window, start)
        known = self.by_slug.get(slug)
        if known is not None:
            return known
        end = following(window, start)
        question = updown_title("Bitcoin", window, start, end)
        spec = make_spec(
            slug=slug,
            kind="btc",
            window=window,
            start=start,
            end=end,
            question=question,
            labels=("Up", "Down"),
        )
        return self._remember(spec)

    def _decoys(self, now: float) -> list[Listed]:
        """ETH 5m windows and two Yes/No markets: a client must filter them out (§6.4)."""
        out = []
        current = align("5m", now)
        for start in (current, following("5m", current)):
            slug = f"eth-updown-5m-{start}"
            spec = self.by_slug.get(slug) or self._remember(
                make_spec(
                    slug=slug,
                    kind="eth",
                    window="5m",
                    start=start,
                    end=start + 300,
                    question=updown_title("Ethereum", "5m", start, start + 300),
                    labels=("Up", "Down"),
                )
            )
            out.append(Listed(spec, closed=False, accepting_orders=True))
        year = datetime.fromtimestamp(now, UTC).year
        for slug, question in (
            (
                f"will-bitcoin-reach-150k-by-december-31-{year}",
                f"Will Bitcoin reach $150k by December 31, {year}?",
            ),
            (f"will-it-snow-in-lisbon-in-{year}", f"Will it snow in Lisbon in {year}?"),
        ):
            spec = self.by_slug.get(slug) or self._remember(self._yes_no(slug, question, year))
            out.append(Listed(spec, closed=False, accepting_orders=spec.end > now))
        return out

    def _fillers(self, now: float) -> list[Listed]:
        """`filler` open Yes/No markets ending evenly over the next 24 h (a listing as big as today's, §6.1).

        Each is named by its end time, so the set rolls with the clock like the windows do.
        """
        if not self.filler:
            return []
        step = max(1, DAY // self.filler)
        first = int(now) // step * step + step
        out = []
        for end in range(first, first + step * self.filler, step):
            slug = f"filler-market-ending-{end}"
            spec = self.by_slug.get(slug) or self._remember(
                make_spec(
                    slug=slug,
                    kind="other",
                    window=None,
                    start=end - DAY,
                    end=end,
                    question=f"Filler market ending at {end}?",
                    labels=("Yes", "No"),
                )
            )
            out.append(Listed(spec, closed=False, accepting_orders=True))
        return out

    def _yes_no(self, slug: str, question: str, year: int) -> MarketSpec:
        """A year-long Yes/No decoy market."""
        start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
        end = int(datetime(year + 1, 1, 1, 4, tzinfo=UTC).timestamp())
        return make_spec(
            slug=slug,
            kind="other",
            window=None,
            start=start,
            end=end,
            question=question,
            labels=("Yes", "No"),
        )
