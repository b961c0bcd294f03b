"""One market-channel connection slot (`Link`): connect, subscribe, PING, watch, reconnect until stopped.

PROTOCOL.md §2: the subscription is the first frame; text `PING` every 10 s, `PONG` back; no ACK for
subscribe; dynamic subscribe/unsubscribe with `operation` messages. A connection that answers PONG but
delivers no market data for `stale_after_seconds` is a stale feed (§0.2): it is recorded and replaced.
Every frame is stamped and sequenced as it is read, then enveloped and handed to the `FrameHandler` (the
`Intake`, within `websocket.handoff_batch_ms`) before anything else looks at it; the handler never drops a
frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from pmws.backoff import RETRY_AFTER_MAX_SECONDS, backoff, retry_after_hint, retry_delay
from pmws.config import Websocket
from pmws.envelope import ConnectionContext, TrackedToken, build_envelope
from pmws.errors import FeedError, describe_network_error
from pmws.protocol import PING, Classified, FrameShape, operation_message, subscribe_message
from pmws.wsconn import abort, batch_pause, closed_reason, idle_probe, undecodable_frame


class LinkState(StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    SUBSCRIBED = "subscribed"
    BACKOFF = "backoff"
    STOPPED = "stopped"


class FrameHandler(Protocol):
    """Where a Link delivers each frame's envelope, and lifecycle events (archive + stats)."""

    def on_envelope(
        self, line: bytes, classified: Classified, received_ns: int, global_sequence: int
    ) -> None: ...

    def on_lifecycle(self, event: str, link: Link, details: dict[str, Any]) -> None: ...

    def on_handed_over(self) -> None:
        """After each hand-over of frames (the frames handed over, even if one was refused): settle
        whatever the handler only noted per frame (`FeedStats.tally`)."""
        ...

    async def wait_for_room(self) -> None: ...

    def has_room(self) -> bool:
        """True when `wait_for_room` would not wait: the Link awaits it only when the writer is behind."""
        ...

    def quiet_ok(self, link: Link, now: float) -> bool:
        """True when REST confirms every token of this silent link is merely quiet (not stale)."""
        ...


@dataclass
class Sequencer:
    """Session-wide counters: connection numbers and the global message sequence never repeat."""

    connections: int = 0
    messages: int = 0

    def next_connection(self) -> int:
        self.connections += 1
        return self.connections

    def next_message(self) -> int:
        self.messages += 1
        return self.messages


#: Hand the frames read over at once when this many wait, whatever `handoff_batch_ms` says.
HANDOFF_MAX_FRAMES = 256


class Intake:
    """Frames read (stamped, sequenced) but not yet enveloped and handed to the handler, in read order.

    One per session, shared by its links, so frames reach the handler in global sequence order. At a low
    rate a frame processed on its own, woken from idle, costs about three times what it costs among
    others (cold caches; issue 14: 1,000 frames/s). So frames wait up to `delay` seconds (or
    `HANDOFF_MAX_FRAMES`) and are then processed together. The receive stamp is taken when a frame is
    read, never later; only the hand-over waits. The handler calls `flush()` before anything that must
    come after every frame read so far (a lifecycle record, a REST comparison, a rotation, a token
    forgotten). A frame the handler refuses (a failed archive) stays queued: the error is raised again
    at the next flush, by the receive loop or supervision (`error`), never dropped.
    """

    def __init__(self, handler: FrameHandler, *, delay: float, max_frames: int = HANDOFF_MAX_FRAMES):
        self.handler = handler
        self.delay = delay
        self.max_frames = max_frames
        self.error: BaseException | None = None  # what the last timed flush raised
        self._pending: list[tuple[Link, str | bytes, int, int, int, ConnectionContext]] = []
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self,
        link: Link,
        message: str | bytes,
        received_ns: int,
        message_sequence: int,
        global_sequence: int,
        context: ConnectionContext,
    ) -> None:
        """Queue one frame read (in read order); hand it over now when batching is off or the queue full."""
        pending = self._pending
        pending.append((link, message, received_ns, message_sequence, global_sequence, context))
        if self.delay <= 0 or len(pending) >= self.max_frames:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._timed_flush)

    def _timed_flush(self) -> None:
        self._timer = None
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 - kept for the receive loop and supervision to raise
            self.error = exc

    def flush(self) -> None:
        """Envelope every queued frame and hand it to the handler, in read order."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending = self._pending
        if not pending:
            return
        self._pending = []  # a record the handler writes meanwhile flushes again: nothing left to do
        on_envelope = self.handler.on_envelope
        now = time.monotonic()
        control = FrameShape.CONTROL
        try:
            for index, (link, message, received_ns, sequence, global_sequence, context) in enumerate(pending):
                if isinstance(message, str):  # a text frame: its text is escaped as is, not decoded again
                    payload, text = message.encode("utf-8"), message
                else:
                    payload, text = message, None
                line, classified = build_envelope(
                    payload,
                    binary=text is None,
                    context=context,
                    received_ns=received_ns,
                    message_sequence=sequence,
                    global_sequence=global_sequence,
                    text=text,
                )
                try:
                    on_envelope(line, classified, received_ns, global_sequence)
                except BaseException:
                    self._pending = pending[index:] + self._pending  # never dropped: raised again next flush
                    raise
                link.last_frame_monotonic = now
                if classified.is_market_data:
                    link.last_data_monotonic = now
                elif classified.shape is control:
                    link._last_pong = now
        finally:
            self.handler.on_handed_over()
        self.error = None


class ConnectFailed(Exception):
    """A connection attempt failed before subscribing."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class Link:
    """One websocket connection slot; reconnects with a new `connection_sequence` each time."""

    def __init__(
        self,
        *,
        slot: int,
        url: str,
        tokens: tuple[TrackedToken, ...],
        settings: Websocket,
        handler: FrameHandler,
        sequencer: Sequencer,
        session_id: str,
        stop: asyncio.Event,
        fail_fast: bool = False,
        shard: str | None = None,
        intake: Intake | None = None,
    ):
        self.slot = slot
        self.url = url
        self.tokens = tokens
        self.settings = settings
        self.handler = handler
        self.sequencer = sequencer
        self.session_id = session_id
        self.stop = stop
        self.fail_fast = fail_fast
        self.shard = shard
        # not `intake or …`: an empty Intake is falsy (it has __len__), and each link must share the pool's
        delay = settings.handoff_batch_ms / 1000
        self.intake = intake if intake is not None else Intake(handler, delay=delay)
        self.state = LinkState.IDLE
        self.context: ConnectionContext | None = None
        self.connection_sequence = 0
        self.message_sequence = 0
        self.reconnects = 0
        self.stale_events = 0
        self.pong_timeouts = 0
        self.connect_failures = 0
        self.last_error: str | None = None
        self.last_data_monotonic: float | None = None
        self.last_frame_monotonic: float | None = None
        self.subscribed_monotonic: float | None = None
        self._ws: ClientConnection | None = None
        self._close_reason: str | None = None
        self._close_details: dict[str, Any] = {}
        self._ever_subscribed = False

    @property
    def asset_ids(self) -> list[str]:
        return [t.token_id for t in self.tokens]

    def is_fresh(self, now: float | None = None) -> bool:
        """Subscribed and market data seen within the stale window."""
        if self.state is not LinkState.SUBSCRIBED:
            return False
        now = time.monotonic() if now is None else now
        since = self.last_data_monotonic or self.subscribed_monotonic or now
        return now - since < self.settings.stale_after_seconds or self.handler.quiet_ok(self, now)

    async def run(self) -> None:
        """Connect and serve until `stop`; never gives up (unless fail_fast on the first attempt)."""
        delays = _fresh_backoff(self.settings)
        while not self.stop.is_set():
            retry_after: float | None = None
            try:
                served_data = await self._connect_and_serve()
            except ConnectFailed as exc:
                self.connect_failures += 1
                self.last_error = str(exc)
                self.handler.on_lifecycle("connect_failed", self, {"reason": str(exc)})
                if self.fail_fast and not self._ever_subscribed:
                    raise FeedError(str(exc)) from exc
                retry_after = exc.retry_after
                served_data = False
            if self.stop.is_set():
                break
            if served_data:
                delays = _fresh_backoff(self.settings)
            # the server's word beats our backoff cap (bounded for sanity)
            delay = retry_delay(next(delays), retry_after, RETRY_AFTER_MAX_SECONDS)
            self.state = LinkState.BACKOFF
            self.handler.on_lifecycle("reconnect_scheduled", self, {"delay_seconds": round(delay, 3)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=delay)
            self.reconnects += 1
        self.state = LinkState.STOPPED

    async def _connect_and_serve(self) -> bool:
        """One connection's life. True if it was healthy: market data arrived on it and it stayed up at
        least HEALTHY_SECONDS (capped by the backoff's maximum), so the reconnect backoff starts over.

        A server that closes each connection after its handshake, or right after the initial dump, is
        retried with a growing delay, never every few hundred milliseconds."""
        self.state = LinkState.CONNECTING
        self.last_data_monotonic = None  # this connection's data only
        ws = await self._open()
        opened = time.monotonic()
        self._ws = ws
        self._close_reason = None
        self._close_details = {}
        self.connection_sequence = self.sequencer.next_connection()
        self.message_sequence = 0
        self.context = ConnectionContext(
            self.session_id, self.connection_sequence, self.url, self.tokens, self.shard
        )
        self.handler.on_lifecycle("connect", self, {"url": self.url})
        watchers: list[asyncio.Task[None]] = []
        try:
            await ws.send(
                subscribe_message(self.asset_ids, custom_feature_enabled=self.settings.custom_feature_enabled)
            )
            self.state = LinkState.SUBSCRIBED
            self._ever_subscribed = True
            self.subscribed_monotonic = time.monotonic()
            self.last_data_monotonic = None
            self.handler.on_lifecycle("subscribe", self, {"assets_ids": self.asset_ids, "initial": True})
            watchers = [
                asyncio.create_task(self._pinger(ws)),
                asyncio.create_task(self._watchdog(ws)),
                asyncio.create_task(self._stopper(ws)),
            ]
            await self._receive(ws)
        except ConnectionClosed as exc:
            self._close_reason = self._close_reason or closed_reason(exc)
            self._close_details = undecodable_frame(exc)
        finally:
            for task in watchers:
                task.cancel()
            for task in watchers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await abort(ws)
            self._ws = None
            self.state = LinkState.IDLE
            reason = self._close_reason or ("stopped" if self.stop.is_set() else "closed")
            self.handler.on_lifecycle(
                "disconnect",
                self,
                {"reason": reason, "messages": self.message_sequence, **self._close_details},
            )
        lasted = time.monotonic() - opened
        healthy_after = min(HEALTHY_SECONDS, self.settings.reconnect_max_seconds)
        return self.last_data_monotonic is not None and lasted >= healthy_after

    async def _open(self) -> ClientConnection:
        try:
            return await connect(
                self.url,
                open_timeout=self.settings.open_timeout_seconds,
                ping_interval=None,  # Polymarket uses text PING/PONG (PROTOCOL.md §2.4), sent by _pinger
                close_timeout=1.0,
                max_size=self.settings.max_frame_bytes,
                max_queue=64,
                user_agent_header=self.settings.user_agent,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            retry = retry_after_hint(exc.response.headers, exc.response.body)
            raise ConnectFailed(f"{self.url}: websocket upgrade refused with HTTP {status}", retry) from exc
        except InvalidURI as exc:
            raise ConnectFailed(f"{self.url}: not a websocket URL ({exc})") from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise ConnectFailed(describe_network_error(self.url, exc)) from exc

    async def _receive(self, ws: ClientConnection) -> None:
        """The hot path: receive, stamp, sequence, queue for the handler; then wait if the writer is behind.

        Per frame: one clock read for the receive stamp, one append to the `Intake` (which envelopes and
        hands over in batches); attribute lookups are hoisted out of the loop, and the writer's backlog is
        checked without a coroutine when there is room (the common case). Whatever ends the loop, the
        frames read are handed over first.
        """
        handler, intake = self.handler, self.intake
        has_room, add = handler.has_room, intake.add
        next_message = self.sequencer.next_message
        pause = self.settings.read_batch_ms / 1000
        idle = idle_probe(ws) if pause > 0 else None
        recv, time_ns = ws.recv, time.time_ns
        try:
            while True:
                message = await recv()
                received_ns = time_ns()
                self.message_sequence = sequence = self.message_sequence + 1
                context = self.context
                assert context is not None
                add(self, message, received_ns, sequence, next_message(), context)
                if intake.error is not None:
                    intake.flush()  # a timed hand-over failed: raise its error here, in the link's task
                if not has_room():
                    intake.flush()
                    await handler.wait_for_room()
                if idle is not None and idle():
                    await batch_pause(ws, pause)
        finally:
            intake.flush()

    async def _pinger(self, ws: ClientConnection) -> None:
        self._last_pong = time.monotonic()
        while True:
            await asyncio.sleep(self.settings.ping_interval_seconds)
            sent = time.monotonic()
            await ws.send(PING)
            if sent - self._last_pong > self.settings.pong_timeout_seconds:
                self.pong_timeouts += 1
                self._close_reason = "pong_timeout"
                since = self.last_frame_monotonic or self.subscribed_monotonic or sent
                self.handler.on_lifecycle(
                    "pong_timeout", self, {"seconds_without_frames": round(sent - since, 3)}
                )
                await abort(ws)
                return

    async def _watchdog(self, ws: ClientConnection) -> None:
        stale_after = self.settings.stale_after_seconds
        tick = max(0.05, min(1.0, stale_after / 4))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            since = self.last_data_monotonic or self.subscribed_monotonic or now
            if now - since >= stale_after and not self.handler.quiet_ok(self, now):
                self.stale_events += 1
                self._close_reason = "stale_feed"
                self.handler.on_lifecycle(
                    "stale_feed", self, {"seconds_without_market_data": round(now - since, 3)}
                )
                await abort(ws)
                return

    async def _stopper(self, ws: ClientConnection) -> None:
        await self.stop.wait()
        self._close_reason = "stopped"
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), timeout=1.0)
        await abort(ws)

    async def set_tokens(self, tokens: tuple[TrackedToken, ...]) -> None:
        """Change the subscription on the open connection (PROTOCOL.md §2.2); reconnect if that fails."""
        old = set(self.asset_ids)
        new = {t.token_id for t in tokens}
        added = [t.token_id for t in tokens if t.token_id not in old]
        removed = [a for a in self.asset_ids if a not in new]
        self.tokens = tokens
        ws = self._ws
        if ws is None or self.state is not LinkState.SUBSCRIBED or self.context is None:
            return
        self.context = self.context.with_tokens(tokens)
        try:
            if added:
                await ws.send(
                    operation_message(
                        added,
                        "subscribe",
                        custom_feature_enabled=self.settings.custom_feature_enabled,
                    )
                )
                self.handler.on_lifecycle("subscribe", self, {"assets_ids": added, "initial": False})
            if removed:
                await ws.send(operation_message(removed, "unsubscribe"))
                self.handler.on_lifecycle("unsubscribe", self, {"assets_ids": removed})
        except ConnectionClosed:
            self._close_reason = "resubscribe_failed"
            await abort(ws)  # the run loop reconnects with the new list

    async def resubscribe(self, token_ids: list[str]) -> None:
        """Unsubscribe + subscribe these tokens on the open connection: the server re-sends their books."""
        ws = self._ws
        if ws is None or self.state is not LinkState.SUBSCRIBED:
            return
        try:
            await ws.send(operation_message(token_ids, "unsubscribe"))
            await ws.send(
                operation_message(
                    token_ids, "subscribe", custom_feature_enabled=self.settings.custom_feature_enabled
                )
            )
        except ConnectionClosed:
            return  # the run loop reconnects, which subscribes them afresh
        self.handler.on_lifecycle("resubscribe", self, {"assets_ids": token_ids})

    async def reconnect(self, reason: str) -> None:
        """Drop the current connection; the run loop reconnects with the full token list."""
        ws = self._ws
        if ws is None:
            return
        self._close_reason = reason
        await abort(ws)


#: A connection that delivered market data for this long resets the reconnect backoff
HEALTHY_SECONDS = 30.0


def _fresh_backoff(settings: Websocket) -> Iterator[float]:
    return backoff(settings.reconnect_initial_seconds, settings.reconnect_max_seconds)
