"""A recorder's websocket connections by slot: start, retarget, retire, and their counters.

`sample` keeps one slot for its whole run; `run` follows a connection plan (subscriptions.py) that opens and
retires slots as markets come and go. A retired link's counters are kept, so the totals never go down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from pmws.config import Websocket
from pmws.envelope import TrackedToken
from pmws.feed import FrameHandler, Intake, Link, Sequencer
from pmws.health import LINK_COUNTERS, LinkView


def link_counts(link: Link) -> dict[str, int]:
    """One link's counters under the cumulative names (health.LINK_COUNTERS)."""
    return {
        "reconnects": link.reconnects,
        "stale_feed_events": link.stale_events,
        "pong_timeouts": link.pong_timeouts,
        "connect_failures": link.connect_failures,
    }


class LinkPool:
    """The links of one session (one `Sequencer`: connection and message sequences are session-wide)."""

    def __init__(
        self,
        *,
        url: str,
        settings: Websocket,
        handler: FrameHandler,
        session_id: str,
        stop_timeout: float,
        shard: str | None = None,
        fail_fast: bool = False,
    ):
        self.url = url
        self.settings = settings
        self.handler = handler
        self.session_id = session_id
        self.stop_timeout = stop_timeout
        self.shard = shard
        self.fail_fast = fail_fast
        self.sequencer = Sequencer()
        #: every link's frames, handed over in read order (`flush()` before anything that must follow them)
        self.intake = Intake(handler, delay=settings.handoff_batch_ms / 1000)
        self.links: list[Link | None] = []
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.retired = dict.fromkeys(LINK_COUNTERS, 0)

    def live(self) -> list[Link]:
        return [link for link in self.links if link is not None]

    def link_of(self, token: str) -> Link | None:
        return next((link for link in self.live() if token in link.asset_ids), None)

    def start(self, slot: int, tokens: tuple[TrackedToken, ...]) -> Link:
        while len(self.links) <= slot:
            self.links.append(None)
        link = Link(
            slot=slot,
            url=self.url,
            tokens=tokens,
            settings=self.settings,
            handler=self.handler,
            sequencer=self.sequencer,
            session_id=self.session_id,
            stop=asyncio.Event(),
            fail_fast=self.fail_fast,
            shard=self.shard,
            intake=self.intake,
        )
        self.links[slot] = link
        self.tasks[slot] = asyncio.create_task(link.run(), name=f"pmws-link-{slot}")
        return link

    async def follow(self, plan: Sequence[tuple[TrackedToken, ...]]) -> None:
        """Slot i carries plan[i]: open a slot that gains tokens, retire one left empty, retarget the rest."""
        for slot, tokens in enumerate(plan):
            link = self.links[slot] if slot < len(self.links) else None
            if link is None and tokens:
                self.start(slot, tokens)
            elif link is not None and not tokens:
                await self.retire(slot)
            elif link is not None and [t.token_id for t in tokens] != link.asset_ids:
                await link.set_tokens(tokens)

    async def retire(self, slot: int) -> None:
        """Stop a link; past `stop_timeout` its task is cancelled (what it got is kept)."""
        link = self.links[slot]
        if link is None:
            return
        link.stop.set()
        task = self.tasks.pop(slot, None)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=self.stop_timeout)
        for key, value in link_counts(link).items():
            self.retired[key] += value
        self.links[slot] = None

    async def shutdown(self) -> None:
        """Stop every link at once, each bounded by `stop_timeout`."""
        for link in self.live():
            link.stop.set()
        await asyncio.gather(*(self.retire(s) for s in range(len(self.links))), return_exceptions=True)

    def totals(self) -> dict[str, int]:
        """LINK_COUNTERS summed over retired and live links."""
        totals = dict(self.retired)
        for link in self.live():
            for key, value in link_counts(link).items():
                totals[key] += value
        return totals

    def views(self, now: float | None = None) -> list[LinkView]:
        """Each live link as health and the view see it."""
        now = time.monotonic() if now is None else now
        return [
            LinkView(
                link.slot,
                link.state.value,
                link.connection_sequence,
                link.reconnects,
                link.stale_events,
                len(link.tokens),
                fresh=link.is_fresh(now),
                last_data_monotonic=link.last_data_monotonic,
            )
            for link in self.live()
        ]
