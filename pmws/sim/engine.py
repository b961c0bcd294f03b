"""The market model: one global book pair per market, mutated one action at a time.

Every action mutates the books and returns the events describing it in one synchronous step, so REST
(/books) and every websocket connection always see the same state (PROTOCOL.md §5.3: entry hashes are the
book hash after the entry, with the message timestamp). The two tokens of a market are mirror images
(an Up bid at p is a Down ask at 1-p), which is why a `price_change` usually carries both tokens (§2.5, [C2]).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from pmws.sim import events as E
from pmws.sim.catalog import Catalog, MarketSpec, digest
from pmws.sim.config import SimConfig
from pmws.sim.events import Ev, Frame
from pmws.sim.orderbook import BUY, ONE, PRICE_TEXT, SELL, TokenBook, ltp_text, size_text

OPPOSITE = {BUY: SELL, SELL: BUY}
MAX_LEVELS = 14
SIZE_POOL = 4099


class MarketBook:
    """The two mirrored token books of one market and its event clock."""

    def __init__(self, spec: MarketSpec, seed: int, now_ms: int) -> None:
        self.spec = spec
        self.last_ms = now_ms
        self.resolved = False
        rng = random.Random(f"{seed}:{spec.slug}")
        ts = str(now_ms)
        self.tokens = [TokenBook(spec.condition_id, t, tick_mills=10, timestamp=ts) for t in spec.token_ids]
        self.assets = frozenset(spec.token_ids)
        self.token_assets = tuple(frozenset((t,)) for t in spec.token_ids)
        _seed_levels(self, rng)

    @property
    def tick_mills(self) -> int:
        """Both tokens share the market's tick."""
        return self.tokens[0].tick_mills

    def next_ts(self, now_ms: int) -> str:
        """A fresh epoch-ms timestamp, strictly increasing for this market's assets (§3)."""
        self.last_ms = max(now_ms, self.last_ms + 1)
        return str(self.last_ms)

    def top(self) -> tuple[int, int, int, int]:
        """(bid, ask) of both tokens in mills, 0/1000 for an empty side; the second mirrors the first."""
        bid, ask = self.tokens[0].top()
        return bid, ask, ONE - ask, ONE - bid


def _random_cents(rng: random.Random) -> int:
    """A plausible level size: often whole shares, sometimes with cents."""
    cents = rng.choice((rng.randint(5, 400), rng.randint(400, 5000), rng.randint(5000, 200000))) * 100
    return cents if rng.random() < 0.5 else cents + rng.randint(1, 99)


def _seed_levels(book: MarketBook, rng: random.Random) -> None:
    """A starting book around a mid of 0.35-0.65 with 6-10 levels a side on the 0.01 grid."""
    tick = book.tick_mills
    best_bid = rng.randint(34, 64) * tick
    best_ask = best_bid + tick * rng.randint(1, 2)
    for start, step, side in ((best_bid, -tick, BUY), (best_ask, tick, SELL)):
        price, count = start, rng.randint(6, 10)
        for _ in range(count):
            if not tick <= price <= ONE - tick:
                break
            cents = _random_cents(rng)
            book.tokens[0].set_level(side, price, cents)
            book.tokens[1].set_level(OPPOSITE[side], ONE - price, cents)
            price += step * rng.choice((1, 1, 1, 2))
    if rng.random() < 0.6:
        book.tokens[0].last_trade_price = ltp_text(best_ask)
        book.tokens[1].last_trade_price = ltp_text(ONE - best_ask)


class Engine:
    """Books for every market touched so far, and the stream of actions on the subscribed ones."""

    def __init__(self, config: SimConfig, catalog: Catalog, clock: Callable[[], float]) -> None:
        self.config = config
        self.catalog = catalog
        self.clock = clock
        self.rng = random.Random(config.seed)
        self._sizes = [_random_cents(self.rng) for _ in range(SIZE_POOL)]  # cycled: cheap at 30k frames/s
        self._size_at = 0
        self.books: dict[str, MarketBook] = {}
        self.active: list[MarketBook] = []
        self._turn = 0
        self._actions = 0
        self._frames = 0
        self._pending: list[Ev] = []
        self._seen_slugs: set[str] | None = None

    def now_ms(self) -> int:
        """The injected clock in epoch ms."""
        return int(self.clock() * 1000)

    def market_book(self, spec: MarketSpec) -> MarketBook:
        """The book pair of a market, created on first use."""
        book = self.books.get(spec.slug)
        if book is None:
            book = self.books[spec.slug] = MarketBook(spec, self.config.seed, self.now_ms())
        return book

    def token_book(self, token: str) -> TokenBook | None:
        """The book of a known token, or None."""
        spec = self.catalog.lookup_token(token, self.clock())
        if spec is None:
            return None
        return self.market_book(spec).tokens[spec.token_ids.index(token)]

    def snapshot(self, tokens: list[str]) -> list[Ev]:
        """Initial-dump `book` events for the known tokens, in the order asked (§3.1)."""
        out = []
        for token in dict.fromkeys(tokens):
            book = self.token_book(token)
            if book is not None:
                out.append(Ev(book.snapshot_event(), frozenset((token,))))
        return out

    def set_active(self, tokens: set[str]) -> None:
        """Stream actions for the markets of these tokens (those whose window has not ended)."""
        now = self.clock()
        seen: dict[str, MarketBook] = {}
        for token in sorted(tokens):
            spec = self.catalog.lookup_token(token, now)
            if spec is not None and spec.end > now:
                seen.setdefault(spec.slug, self.market_book(spec))
        self.active = list(seen.values())

    def next_frames(self) -> list[Frame]:
        """One action on the next active market, framed; every Nth frame is an array of two events."""
        frames: list[Frame] = []
        pending = self._pending
        pending.extend(self._action())
        while pending:
            self._frames += 1
            every = self.config.batch_array_every
            if every and self._frames % every == 0:
                if len(pending) < 2:
                    pending.extend(self._action())
                frames.append(Frame(pending[:2], array=True))
                del pending[:2]
            else:
                frames.append(Frame([pending.pop(0)], array=False))
        return frames

    def _action(self) -> list[Ev]:
        """Mutate one market and describe it: a quote change, a trade or a tick change."""
        now = self.clock()
        while self.active:
            self._turn = (self._turn + 1) % len(self.active)
            book = self.active[self._turn]
            if book.spec.end > now:
                break
            self.active.remove(book)  # the window ended: trading stops
        else:
            return []
        self._actions += 1
        cfg = self.config
        if cfg.tick_change_every and self._actions % cfg.tick_change_every == 0:
            return self._tick_change(book)
        if cfg.trade_every and self._actions % cfg.trade_every == 0:
            trade = self._trade(book)
            if trade:
                return trade
        return self._quote(book)

    def _next_size(self) -> int:
        """The next level size (cents) from the precomputed pool."""
        self._size_at = (self._size_at + 1) % SIZE_POOL
        return self._sizes[self._size_at]

    def _quote(self, book: MarketBook) -> list[Ev]:
        """Place, resize or cancel one level near the top of one side (§3.2)."""
        bits = self.rng.getrandbits(2)
        index, side = bits & 1, BUY if bits & 2 else SELL
        mills, cents = _pick_change(self.rng, book.tokens[index], side, book.tick_mills, self._next_size())
        return self._price_change(book, index, side, mills, cents)

    def _price_change(self, book: MarketBook, index: int, side: str, mills: int, cents: int) -> list[Ev]:
        """Set a level on one token and its mirror on the other: one `price_change` with both entries,
        plus `best_bid_ask` for each token whose top moved (custom feature, §3.6)."""
        before = book.top()
        ts = book.next_ts(self.now_ms())
        size = size_text(cents)
        entries = []
        for token, token_side, price in (
            (book.tokens[index], side, mills),
            (book.tokens[1 - index], OPPOSITE[side], ONE - mills),
        ):
            token.set_level(token_side, price, cents)
            token.timestamp = ts
            entries.append(
                {
                    "asset_id": token.asset_id,
                    "price": PRICE_TEXT[price],
                    "size": size,
                    "side": token_side,
                    "hash": token.hash(),  # this asset's book after this entry, message timestamp (§5.3)
                    "best_bid": "",
                    "best_ask": "",
                }
            )
        if self.rng.random() < 0.5:
            entries.reverse()  # the capture has both orders (§2.5, [C2])
        after = book.top()
        for entry in entries:  # top of book after the whole message (§2.5)
            first = entry["asset_id"] == book.tokens[0].asset_id
            entry["best_bid"] = PRICE_TEXT[after[0] if first else after[2]]
            entry["best_ask"] = PRICE_TEXT[after[1] if first else after[3]]
        obj = {
            "market": book.spec.condition_id,
            "price_changes": entries,
            "timestamp": ts,
            "event_type": "price_change",
        }
        out = [Ev(obj, book.assets)]
        if self.config.custom_events and after != before:
            for i in (0, 1):
                bid, ask = after[2 * i], after[2 * i + 1]
                if (bid, ask) != before[2 * i : 2 * i + 2]:
                    bba = E.best_bid_ask(
                        book.spec, book.spec.token_ids[i], bid, ask, book.next_ts(self.now_ms())
                    )
                    out.append(Ev(bba, book.token_assets[i], custom=True))
        return out

    def _trade(self, book: MarketBook) -> list[Ev]:
        """A taker buys at the best ask: last_trade_price, the level change, then the post-trade book.

        Real servers may send the trade's last_trade_price after the book whose hash already includes it
        (§5.3, [I8b]); the simulator sends it first so a rebuilding client can verify every hash.
        """
        rng = self.rng
        index = rng.getrandbits(1)
        token = book.tokens[index]
        price = token.best_ask()
        if price is None:
            return []
        level = token.asks[price]
        if len(token.asks) > 1 and (level < 2 or rng.random() < 0.4):
            filled = level
        elif level >= 2:
            filled = rng.randint(1, level - 1)
        else:
            return []
        trade_ts = book.next_ts(self.now_ms())
        token.last_trade_price = ltp_text(price)
        ltp = E.last_trade_price(
            book.spec,
            token.asset_id,
            price=token.last_trade_price,
            side=BUY,
            size=size_text(filled),
            timestamp=trade_ts,
        )
        out = [Ev(ltp, book.token_assets[index])]
        out.extend(self._price_change(book, index, SELL, price, level - filled))
        token.timestamp = book.next_ts(self.now_ms())
        out.append(Ev(token.post_trade_event(), book.token_assets[index]))
        return out

    def _tick_change(self, book: MarketBook) -> list[Ev]:
        """Toggle the tick 0.01 <-> 0.001 (§3.4), drop off-grid levels, then send fresh books."""
        old_text = book.tokens[0].tick_size
        new = 1 if book.tick_mills == 10 else 10
        out = []
        for token in book.tokens:
            token.tick_mills = new
            event = E.tick_size_change(
                book.spec, token.asset_id, old_text, token.tick_size, book.next_ts(self.now_ms())
            )
            out.append(Ev(event, frozenset((token.asset_id,))))
        _snap_to_grid(book)
        for token in book.tokens:
            token.timestamp = book.next_ts(self.now_ms())
            out.append(Ev(token.snapshot_event(), frozenset((token.asset_id,))))
        return out

    def lifecycle(self) -> list[Frame]:
        """`new_market` for windows that just appeared, `market_resolved` for ended ones (§3.7, §3.8)."""
        if not self.config.custom_events:
            return []
        now = self.clock()
        listed = self.catalog.listing(now)
        slugs = {item.spec.slug for item in listed}
        out: list[Frame] = []
        if self._seen_slugs is not None:
            for item in listed:
                if item.spec.slug not in self._seen_slugs and item.accepting_orders:
                    obj = E.new_market(item.spec, description_of(item.spec), str(self.now_ms()))
                    out.append(
                        Frame([Ev(obj, frozenset(item.spec.token_ids), custom=True, broadcast=True)], False)
                    )
            slugs |= self._seen_slugs
        self._seen_slugs = slugs
        for book in self.books.values():
            spec = book.spec
            if not book.resolved and spec.window and spec.end <= now:
                book.resolved = True
                obj = E.market_resolved(
                    spec, digest(f"winner:{spec.slug}")[0] % 2, book.next_ts(self.now_ms())
                )
                out.append(Frame([Ev(obj, frozenset(spec.token_ids), custom=True)], False))
        return out


def description_of(spec: MarketSpec) -> str:
    """Gamma description text for a market."""
    if spec.kind == "other":
        return (
            f'This market will resolve to "Yes" if the answer to "{spec.question}" is yes. Otherwise, "No".'
        )
    name = "Bitcoin" if spec.kind == "btc" else "Ethereum"
    return (
        f'This market will resolve to "Up" if the {name} price at the end of the time range specified in '
        "the title is greater than or equal to the price at the beginning of that range. "
        f'Otherwise, it will resolve to "Down".'
    )


def _pick_change(rng: random.Random, token: TokenBook, side: str, tick: int, size: int) -> tuple[int, int]:
    """(price, new size) for one level of `side`: resize near the top, add without crossing, or cancel."""
    levels = token.bids if side == BUY else token.asks
    near = sorted(levels, reverse=side == BUY)[:5]
    roll = rng.random()
    if len(levels) >= MAX_LEVELS or (len(levels) > 3 and roll < 0.25):
        return near[int(roll * 4 * len(near)) % len(near)], 0
    if len(levels) > 2 and roll < 0.65:
        return near[int(roll * 100) % min(3, len(near))], size
    price = _new_level(rng, token, side, tick)
    if price is None:
        price = near[0] if near else (ONE // 2) - (ONE // 2) % tick
    return price, size


def _new_level(rng: random.Random, token: TokenBook, side: str, tick: int) -> int | None:
    """A grid price on `side` in [tick, 1-tick] near the top that does not cross, or None."""
    bid, ask = token.best_bid(), token.best_ask()
    if side == BUY:
        high = min(ONE - tick, ask - tick if ask is not None else ONE - tick)
        improve = 1 if bid is None or bid < ONE - 100 else 0  # mean reversion near the edges
        price = (bid if bid is not None else high) + tick * rng.randint(-4, improve)
        price = min(high, price)
        price -= price % tick
        return price if tick <= price <= high else None
    low = max(tick, bid + tick if bid is not None else tick)
    improve = -1 if ask is None or ask > 100 else 0
    price = (ask if ask is not None else low) + tick * rng.randint(improve, 4)
    price = max(low, price)
    price += -price % tick
    return price if low <= price <= ONE - tick else None


def _snap_to_grid(book: MarketBook) -> None:
    """After a tick change to 0.01: drop off-grid levels, keeping at least one level a side."""
    tick = book.tick_mills
    up, down = book.tokens
    for side, levels in ((BUY, up.bids), (SELL, up.asks)):
        for price in [p for p in levels if p % tick or not tick <= p <= ONE - tick]:
            up.set_level(side, price, 0)
            down.set_level(OPPOSITE[side], ONE - price, 0)
    for side, levels in ((BUY, up.bids), (SELL, up.asks)):
        if not levels:
            price = _new_level(random.Random(0), up, side, tick) or (tick if side == BUY else ONE - tick)
            up.set_level(side, price, 10000)
            down.set_level(OPPOSITE[side], ONE - price, 10000)
