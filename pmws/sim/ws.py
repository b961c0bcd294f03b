"""The market-channel websocket: subscription rules, PING/PONG, fan-out of the global stream, faults.

PROTOCOL.md §2: the first frame must be a subscription (a PING first is closed with 1008), text `PING` gets
text `PONG`, `operation: subscribe|unsubscribe` changes an open connection and re-sends books (§2.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from pmws.channel import INVALID_SUBSCRIPTION, parse_operation, parse_subscription
from pmws.sim import events as E
from pmws.sim.events import Frame

if TYPE_CHECKING:
    from pmws.sim.server import Simulator

DATA, PONG, JUNK_TEXT, JUNK_BINARY = 0, 1, 2, 3
HIGH_WATER, LOW_WATER = 64, 16  # rate 0: pause generation while any queue is above HIGH_WATER
BURST = 32  # rate 0: frames generated per event-loop turn
MAX_BATCH = 256  # frames written to a transport at once
MAX_QUEUE = 100_000  # a client this far behind is dropped
DROP_GRACE_SECONDS = 1.0
JUNK = b"garbage{not json"
BINARY = b"\x00\x01binary"
INVALID_UTF8 = b'{"event_type":"invalid_utf8","text":"\xff\xfe"}'  # a text frame clients must reject (1007)

Outgoing = tuple[bytes, int]


class Conn:
    """One subscribed client connection."""

    __slots__ = ("id", "ws", "assets", "custom", "queue", "wake", "data_frames", "market_frames", "dropped")

    def __init__(self, conn_id: int, ws: ServerConnection, custom: bool) -> None:
        self.id = conn_id
        self.ws = ws
        self.assets: set[str] = set()
        self.custom = custom
        self.queue: deque[Outgoing] = deque()
        self.wake = asyncio.Event()
        self.data_frames = 0  # every non-PONG frame sent (drop_after_frames counts these)
        self.market_frames = 0  # market-data frames sent (the *_every faults count these)
        self.dropped = False

    def push(self, item: Outgoing, *, urgent: bool = False) -> None:
        """Queue a frame for the sender task."""
        if urgent:
            self.queue.appendleft(item)
        else:
            self.queue.append(item)
        self.wake.set()


class MarketChannel:
    """The websocket server and the task that drives the global stream."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.conns: dict[int, Conn] = {}
        self.server: Server | None = None
        self.port = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._drained = asyncio.Event()

    async def start(self, host: str, port: int, *, tls: ssl.SSLContext | None = None) -> None:
        """Bind the websocket port (TLS with `tls`) and start the stream."""
        extra: dict[str, Any] = {} if tls is None else {"ssl": tls}
        self.server = await serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            compression=None,
            ping_interval=None,  # keepalive is the text PING/PONG of §2.4
            close_timeout=0.5,
            max_queue=1024,
            write_limit=2**17,
            server_header="cloudflare",
            **extra,
        )
        self.port = self.server.sockets[0].getsockname()[1]
        self._tasks = [asyncio.create_task(self._generate()), asyncio.create_task(self._housekeeping())]

    async def close(self) -> None:
        """Stop streaming and close every connection; aborts stragglers so this takes well under 1 s."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.server is None:
            return
        for conn in list(self.server.all_connections):
            if conn.transport.get_write_buffer_size():  # a client that stopped reading: no close frame
                conn.transport.abort()
        self.server.close()
        try:
            await asyncio.wait_for(self.server.wait_closed(), 0.5)
        except TimeoutError:
            for conn in list(self.server.all_connections):
                conn.transport.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 0.3)

    # --- handshake and connection ---------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Fault: reject the upgrade; any path but /ws/market is 404 (§1, [I20])."""
        status = self.sim.faults.ws_reject_status
        if status is not None:
            response = connection.respond(status, "Rejected by the simulator.\n")
            if status == 429:
                response.headers["Retry-After"] = "1"
            return response
        if request.path.split("?", 1)[0] != "/ws/market":
            return connection.respond(404, "Not Found\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        """One connection: subscription first, then PING/operations until it closes."""
        conn_id = self.sim.traffic.open_connection()
        try:
            first = await ws.recv()
        except ConnectionClosed:
            return
        sub = parse_subscription(first)
        if sub is None:
            await ws.close(1008, INVALID_SUBSCRIPTION)
            return
        assets, custom, dump = sub
        self.sim.subscriptions.append((conn_id, "initial", list(assets)))
        conn = Conn(conn_id, ws, custom and self.sim.config.custom_events)
        self.conns[conn_id] = conn
        sender = asyncio.create_task(self._sender(conn))
        try:
            self._subscribe(conn, assets, dump, initial=True)
            async for message in ws:
                self._on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            self.conns.pop(conn_id, None)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            self._refresh_active()

    def _on_message(self, conn: Conn, message: str | bytes) -> None:
        """PING → PONG; subscribe/unsubscribe operations; anything else is ignored."""
        if conn.dropped:
            return
        if message == "PING":
            if not self.sim.config.faults.ping_unanswered:
                conn.push((b"PONG", PONG), urgent=True)
            return
        op = parse_operation(message)
        if op is None:
            return
        assets = op.subscription.assets
        self.sim.subscriptions.append((conn.id, op.operation, list(assets)))
        if op.operation == "subscribe":
            if op.subscription.custom and self.sim.config.custom_events:
                conn.custom = True
            self._subscribe(conn, assets, op.subscription.initial_dump)
        else:
            conn.assets.difference_update(assets)
            self._refresh_active()

    def _subscribe(self, conn: Conn, assets: list[str], dump: bool, *, initial: bool = False) -> None:
        """Add assets and queue their books as one array frame, in the same step (§2.2, §3.1)."""
        conn.assets.update(assets)
        faults = self.sim.faults
        if initial or not faults.blind_until_reconnect:  # a fresh subscription restores a dropped token
            faults.blind_tokens.difference_update(assets)
        if dump and not faults.pong_only and not faults.frozen:
            books = self.sim.engine.snapshot([a for a in assets if a not in faults.blind_tokens])
            if books:
                payload = Frame(books, array=True).payload_for(conn.assets, conn.custom)
                if payload is not None:
                    conn.push((payload, DATA))
        self._refresh_active()

    def _refresh_active(self) -> None:
        """Tell the engine which markets have subscribers."""
        tokens: set[str] = set()
        for conn in self.conns.values():
            if not conn.dropped:
                tokens |= conn.assets
        self.sim.engine.set_active(tokens)

    # --- sending ------------------------------------------------------------------------------------------

    async def _sender(self, conn: Conn) -> None:
        """The only writer of a connection: sends queued frames in order, records them, applies faults."""
        queue = conn.queue
        with contextlib.suppress(ConnectionClosed, RuntimeError):  # RuntimeError: write after write_eof
            while not conn.dropped:
                if not queue:
                    self._drained.set()
                    conn.wake.clear()
                    await conn.wake.wait()
                    continue
                batch, drop = self._take_batch(conn)
                if len(queue) <= LOW_WATER:
                    self._drained.set()
                await self._write(conn, batch)
                if drop:
                    self._drop(conn)

    def _take_batch(self, conn: Conn) -> tuple[list[Outgoing], bool]:
        """Up to MAX_BATCH queued frames plus due fault frames; True if the drop fault fires after them."""
        batch: list[Outgoing] = []
        queue, limit = conn.queue, self.sim.faults.drop_after_frames
        while queue and len(batch) < MAX_BATCH:
            for item in self._with_junk(conn, queue.popleft()):
                batch.append(item)
                if item[1] != PONG:
                    conn.data_frames += 1
                    if limit is not None and conn.data_frames >= limit:
                        return batch, True
        return batch, False

    def _with_junk(self, conn: Conn, item: Outgoing) -> list[Outgoing]:
        """A market-data frame followed by the fault frames due after it (every Nth market-data frame)."""
        if item[1] != DATA:
            return [item]
        conn.market_frames += 1
        faults, n = self.sim.faults, conn.market_frames
        out = [item]
        if faults.send_non_json_every and n % faults.send_non_json_every == 0:
            out.append((JUNK, JUNK_TEXT))
        if faults.send_binary_every and n % faults.send_binary_every == 0:
            out.append((BINARY, JUNK_BINARY))
        if faults.send_invalid_utf8_every and n % faults.send_invalid_utf8_every == 0:
            out.append((INVALID_UTF8, JUNK_TEXT))
        if faults.send_unknown_event_every and n % faults.send_unknown_event_every == 0:
            spec = self.sim.catalog.by_token.get(min(conn.assets, default=""))
            event = E.settlement_preview(spec.condition_id if spec else "", str(self.sim.engine.now_ms()))
            out.append((orjson.dumps(event), JUNK_TEXT))
        return out

    async def _write(self, conn: Conn, batch: list[Outgoing]) -> None:
        """Frame the batch and hand it to the transport in one write, recording each frame as it goes out.

        Uses the connection's sans-I/O protocol inside `send_context()` (what `send()` does per message) so a
        burst costs one syscall instead of one per frame; frames stay separate websocket messages.
        """
        ws = conn.ws
        if not hasattr(ws, "send_context"):  # pragma: no cover - older websockets: one send per frame
            for payload, kind in batch:
                await ws.send(payload, text=kind != JUNK_BINARY)
                self.sim.traffic.record(conn.id, payload, kind)
            return
        async with ws.send_context():
            protocol = ws.protocol
            for payload, kind in batch:
                if kind == JUNK_BINARY:
                    protocol.send_binary(payload)
                else:
                    protocol.send_text(payload)
            ws.transport.write(b"".join(protocol.data_to_send()))
            for payload, kind in batch:
                self.sim.traffic.record(conn.id, payload, kind)

    def _drop(self, conn: Conn) -> None:
        """Fault: end the TCP connection with no close frame.

        The already-sent bytes are flushed before the FIN (write_eof), so every recorded frame reaches the
        client; the transport is aborted if the client has not gone away after a grace period.
        """
        conn.dropped = True
        conn.queue.clear()
        transport = conn.ws.transport
        with contextlib.suppress(Exception):
            if transport.can_write_eof():
                transport.write_eof()
            else:  # TLS has no half-close: close() flushes, sends close_notify, then ends the socket
                transport.close()
        asyncio.get_running_loop().call_later(DROP_GRACE_SECONDS, transport.abort)
        self._refresh_active()

    def fanout(self, frame: Frame) -> None:
        """Queue a frame for every connection it concerns (filtered to its assets, §2.5)."""
        faults = self.sim.faults
        if faults.pong_only or faults.frozen:
            return
        for conn in self.conns.values():
            if conn.dropped:
                continue
            assets = conn.assets - faults.blind_tokens if faults.blind_tokens else conn.assets
            payload = frame.payload_for(assets, conn.custom)
            if payload is not None:
                conn.push((payload, DATA))
                if len(conn.queue) > MAX_QUEUE:
                    self._drop(conn)

    # --- the stream ---------------------------------------------------------------------------------------

    def _backlogged(self) -> bool:
        """True while some client is more than HIGH_WATER frames behind."""
        return any(len(c.queue) > HIGH_WATER for c in self.conns.values() if not c.dropped)

    async def _generate(self) -> None:
        """Drive the market model at `rate_per_second` frames/s, or as fast as the clients read (rate 0)."""
        loop = asyncio.get_running_loop()
        engine, config = self.sim.engine, self.sim.config
        next_at = loop.time()
        while True:
            if self.sim.faults.silent or not engine.active or not self.conns:
                await asyncio.sleep(0.01)
                next_at = loop.time()
                continue
            rate = config.rate_per_second
            if rate <= 0:
                await self._burst()
                continue
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:
                next_at = loop.time()  # do not burst to catch up after a stall
            if not self.sim.faults.silent:
                next_at += max(1, self._step()) / rate

    def _step(self) -> int:
        """One action of the market model, fanned out; returns the number of frames."""
        frames = self.sim.engine.next_frames()
        for frame in frames:
            self.fanout(frame)
        return len(frames)

    async def _burst(self) -> None:
        """Rate 0: top the queues up to BURST frames, yield to the senders, wait while they are backlogged."""
        produced = 0
        while produced < BURST and not self._backlogged() and not self.sim.faults.silent:
            made = self._step()
            if not made:
                break
            produced += made
        await asyncio.sleep(0)
        while self._backlogged():
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), 0.05)

    async def _housekeeping(self) -> None:
        """Lifecycle events as the clock moves, and drop markets whose window ended."""
        while True:
            await asyncio.sleep(0.25)
            for frame in self.sim.engine.lifecycle():
                self.fanout(frame)
            self._refresh_active()
