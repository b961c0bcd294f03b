"""What a person watching a recorder sees: a Rich live table on a terminal, plain lines otherwise."""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from pmws.health import LinkView, Snapshot

__all__ = ["LinkView", "LiveView", "Snapshot", "console_view", "plain_line", "render"]

SHOWN_EVENTS = ("book", "price_change", "last_trade_price", "tick_size_change", "best_bid_ask")
#: Token rows in the live table: more cannot be read on a terminal, and each costs Rich render time (at 500
#: tokens a render took ~230 ms, four times a second, holding the GIL the feed is read with).
MAX_TOKEN_ROWS = 40


def render(snapshot: Snapshot, now_ns: int | None = None) -> Group:
    """The live table: per token counts by event type and age of the last message, then links."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    table = Table(title=snapshot.title, expand=False)
    table.add_column("market")
    table.add_column("outcome")
    for event in SHOWN_EVENTS:
        table.add_column(event.replace("_", " "), justify="right")
    table.add_column("last msg", justify="right")
    if snapshot.token_states:
        table.add_column("coverage")
    for token in snapshot.tokens[:MAX_TOKEN_ROWS]:
        stats = snapshot.stats.tokens.get(token.token_id)
        counts = [str(stats.events.get(e, 0)) if stats else "0" for e in SHOWN_EVENTS]
        age = "-"
        if stats and stats.last_received_ns:
            age = f"{(now_ns - stats.last_received_ns) / 1e9:.1f}s"
        state = [snapshot.token_states.get(token.token_id, "-")] if snapshot.token_states else []
        table.add_row(token.market_slug, token.outcome, *counts, age, *state)
    hidden = len(snapshot.tokens) - MAX_TOKEN_ROWS
    if hidden > 0:
        table.add_row(f"… {hidden} more tokens (per token in /metrics and the manifest)", "")
    links = Table(show_header=True, expand=False)
    for name in ("conn", "state", "seq", "reconnects", "stale", "assets"):
        links.add_column(name)
    for link in snapshot.links:
        links.add_row(
            str(link.slot),
            link.state,
            str(link.connection_sequence),
            str(link.reconnects),
            str(link.stale_events),
            str(link.assets),
        )
    footer = (
        f"frames {snapshot.stats.frames}  market data {snapshot.stats.market_data_messages}  "
        f"REST ok {snapshot.rest_ok} failed {snapshot.rest_failed}  "
        f"elapsed {snapshot.elapsed_seconds:.0f}s" + "".join(f"  {k} {v}" for k, v in snapshot.extra.items())
    )
    return Group(table, links, footer)


def plain_line(snapshot: Snapshot) -> str:
    """One log line for a pod or a pipe."""
    states = ",".join(f"{link.slot}:{link.state}" for link in snapshot.links)
    extra = "".join(f" {k}={v}" for k, v in snapshot.extra.items())
    return (
        f"[pmws] t={snapshot.elapsed_seconds:.0f}s frames={snapshot.stats.frames} "
        f"market_data={snapshot.stats.market_data_messages} events={dict(snapshot.stats.events)} "
        f"rest_ok={snapshot.rest_ok} rest_failed={snapshot.rest_failed} links={states}{extra}"
    )


class LiveView:
    """Refreshes a Rich Live table on a TTY, or prints a plain line per interval.

    The snapshot and the table are made on the caller's thread (the event loop); what writes to the
    terminal (Rich's `update`, which waits for Rich's lock, or a print) runs on one daemon thread. A terminal
    that stops draining (Ctrl-S, a stalled SSH session or pipe) then blocks that thread only: refreshes are
    skipped until it writes again, and neither the recorder nor its exit ever waits for a screen.
    """

    EXIT_WAIT_SECONDS = 2.0

    def __init__(self, snapshot: Callable[[], Snapshot], *, live: bool, interval: float, console: Console):
        self.snapshot = snapshot
        self.interval = interval
        self.console = console
        self.use_rich = live and console.is_terminal
        self._live: Live | None = None
        self._last_plain = 0.0
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._work, name="pmws-view", daemon=True)
        self._thread.start()

    def __enter__(self) -> LiveView:
        if self.use_rich:
            self._live = Live(render(self.snapshot()), console=self.console, refresh_per_second=4)
            self._live.__enter__()
        return self

    def refresh(self) -> None:
        if not self._idle.is_set():
            return  # the terminal is not taking what was written last: skip, never wait
        if self._live is not None:
            live, table = self._live, render(self.snapshot())
            self._submit(lambda: live.update(table))
            return
        now = time.monotonic()
        if now - self._last_plain >= self.interval:
            self._last_plain = now
            line = plain_line(self.snapshot())
            self._submit(lambda: print(line, file=sys.stdout, flush=True))

    def __exit__(self, *exc: object) -> None:
        drained = self._idle.wait(self.EXIT_WAIT_SECONDS)  # the last line or table out, unless it is stuck
        if self._live is not None and drained:
            live, table = self._live, render(self.snapshot())

            def close() -> None:
                live.update(table)
                live.__exit__(None, None, None)

            self._submit(close)
            self._idle.wait(self.EXIT_WAIT_SECONDS)  # a stalled terminal does not hold the exit
        self._jobs.put(None)

    def _submit(self, job: Callable[[], None]) -> None:
        self._idle.clear()
        self._jobs.put(job)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:  # noqa: BLE001 - a screen that fails must never stop a recorder
                pass
            finally:
                self._idle.set()


def console_view(console: Console, *, live: bool) -> Callable[[Callable[[], Snapshot], float], LiveView]:
    """The view factory the CLI hands a recorder: a LiveView on `console`, refreshed every interval."""

    def make(snapshot: Callable[[], Snapshot], interval: float) -> LiveView:
        return LiveView(snapshot, live=live, interval=interval, console=console)

    return make
