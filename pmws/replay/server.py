"""`pmws replay`: archived frames served back as Polymarket's market websocket, with Gamma and `/books`.

One timeline, like the market it stands in for: the archive's records in receive order (`pmws.read`
through `source.py`; two replicas of a shard merged, so a frame both recorded is sent once) move the replay
clock, rebuild every token's book (`pmws.tracker.BookTracker`), and each recorded frame goes to
every connection subscribed to a token it names. The clock starts at the first subscription and runs at the
recorded pace (`speed` 1), N times faster, or, with `speed` None, as fast as the slowest client reads (its
queue above HIGH_WATER pauses the timeline: websockets' write buffer pushes back through `send`).

Routing (PROTOCOL.md §2.5), decided here: a frame is sent as recorded, byte for byte, never split, to every
connection subscribed to ANY token it names (an array of events, a `price_change` with both legs); events
that name no token (`settlement_preview`) follow their market; `new_market` goes to every connection;
non-JSON text, other JSON and binary frames to every connection, as a live connection got them. `PONG` and
`NO NEW ASSETS` are not replayed: they answered the recorder's own connection, and the replay answers PING.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response as WsResponse

from pmws.channel import INVALID_SUBSCRIPTION, PING, PONG, parse_operation, parse_subscription
from pmws.protocol import event_asset_ids, iter_events
from pmws.read import Reader, Record
from pmws.replay.catalog import Catalog, book_event
from pmws.replay.http import ReplayApi
from pmws.replay.source import replay_records
from pmws.sim.http import HttpServer
from pmws.tracker import BookTracker

HIGH_WATER, LOW_WATER = 256, 64  # --speed max: pause the timeline while a queue is above HIGH_WATER
MAX_PROBLEMS = 100  # kept in ReplayStats (each is also reported as it happens)
MAX_QUEUE = 100_000  # paced: a client this far behind is dropped
MAX_BATCH = 256  # frames written to a transport at once
YIELD_EVERY = 64
FAST_FORWARD_YIELD = 4096  # --speed max: records between turns of the event loop
WS_PATH = "/ws/market"

Outgoing = str | bytes  # text frames as str, binary frames as bytes


class Conn:
    """One subscribed client: its assets, their markets, and its queue of frames to send."""

    __slots__ = ("ws", "assets", "markets", "queue", "wake", "sent")

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.assets: set[str] = set()
        self.markets: set[str] = set()
        self.queue: deque[Outgoing] = deque()
        self.wake = asyncio.Event()
        self.sent = 0

    def push(self, item: Outgoing, *, urgent: bool = False) -> None:
        if urgent:
            self.queue.appendleft(item)
        else:
            self.queue.append(item)
        self.wake.set()


@dataclass
class ReplayStats:
    """What the timeline has done so far."""

    records: int = 0
    frames: int = 0  # recorded frames reached by the timeline (from the start time on)
    frames_sent: int = 0  # frames handed to connections (a frame sent to two clients counts twice)
    skipped_before_start: int = 0
    problem_count: int = 0  # damaged files and lines skipped
    problems: list[str] = field(default_factory=list)  # the first MAX_PROBLEMS of them


class Replay:
    """The timeline and the market-channel server; `start()` binds, `finished` is set at the archive's end."""

    def __init__(
        self,
        reader: Reader,
        catalog: Catalog,
        *,
        speed: float | None = 1.0,
        start_ns: int | None = None,
        on_problem: Callable[[str], None] | None = None,
        shift_to: int | Literal["now"] | None = None,
    ) -> None:
        self.reader = reader  # read once, by the timeline; its `filters.end_ns` ends the replay
        self.files = reader.files
        self.catalog = catalog
        self.speed = speed
        self.start_ns = start_ns
        self.shift_to = shift_to  # where Gamma shows the first record played (epoch ns or "now"), if moved
        self.shift_ns = 0  # how far Gamma's times are moved, whole seconds: known once `ready` is set
        self.tracker = BookTracker(verify=False)  # the books are served, not checked
        for info in catalog.tokens.values():
            if info.min_order_size:
                self.tracker.set_metadata(info.token_id, info.min_order_size, info.neg_risk)
        self.stats = ReplayStats()
        self._on_problem = on_problem
        self.conns: set[Conn] = set()
        self.ready = asyncio.Event()  # the books are rebuilt up to the start time
        self.subscribed = asyncio.Event()  # the clock starts at the first subscription
        self.finished = asyncio.Event()
        self.replay_ns: int | None = None  # receive time of the last record applied
        self._drained = asyncio.Event()
        self._server: Server | None = None
        shift_known = self.ready if shift_to is not None else None
        self._http = HttpServer(
            ReplayApi(catalog, self.tracker, shift_ns=lambda: self.shift_ns, shift_known=shift_known)
        )
        self._task: asyncio.Task[None] | None = None
        self.ws_url = self.gamma_url = self.clob_url = ""

    # --- lifecycle --------------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0, http_port: int = 0) -> None:
        """Bind the websocket and HTTP ports (0 = any free port) and start the timeline."""
        await self._http.start(host, http_port)
        try:
            self._server = await serve(
                self._handle,
                host,
                port,
                process_request=_only_market_path,
                compression=None,
                ping_interval=None,  # keepalive is the text PING/PONG of §2.4
                close_timeout=0.5,
                max_queue=1024,
                write_limit=2**17,
            )
        except BaseException:
            await self._http.close()
            raise
        shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        ws_port = self._server.sockets[0].getsockname()[1]
        self.ws_url = f"ws://{shown}:{ws_port}{WS_PATH}"
        self.gamma_url, self.clob_url = (f"http://{shown}:{self._http.port}/{p}" for p in ("gamma", "clob"))
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop the timeline, close every connection and both ports."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        await self._http.close()

    def _problem(self, text: str) -> None:
        self.stats.problem_count += 1
        if len(self.stats.problems) < MAX_PROBLEMS:
            self.stats.problems.append(text)
        if self._on_problem is not None:
            self._on_problem(text)

    # --- connections ------------------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        """Subscription first (else 1008), then PING and operations until the client goes (§2.1, §2.2)."""
        try:
            first = await ws.recv()
        except ConnectionClosed:
            return
        sub = parse_subscription(first)
        if sub is None:
            await ws.close(1008, INVALID_SUBSCRIPTION)
            return
        await self.ready.wait()  # its books must be those at the start time, not halfway there
        conn = Conn(ws)
        self.conns.add(conn)
        sender = asyncio.create_task(self._sender(conn))
        try:
            self._subscribe(conn, sub.assets, sub.initial_dump)
            self.subscribed.set()
            async for message in ws:
                self._on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            self.conns.discard(conn)
            self._drained.set()
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    def _on_message(self, conn: Conn, message: str | bytes) -> None:
        if message == PING:
            conn.push(PONG, urgent=True)
            return
        op = parse_operation(message)
        if op is None:
            return
        if op.operation == "subscribe":
            self._subscribe(conn, op.subscription.assets, op.subscription.initial_dump)
        else:
            conn.assets.difference_update(op.subscription.assets)
            conn.markets = {self.catalog.market_of(a) for a in conn.assets} - {""}

    def _subscribe(self, conn: Conn, assets: list[str], dump: bool) -> None:
        """Add assets; with `initial_dump`, their books as rebuilt at the replay time, one array frame.

        A token with no book yet (the replay is before its first `book`) gets none: the recorded one follows.
        """
        conn.assets.update(assets)
        conn.markets = {self.catalog.market_of(a) for a in conn.assets} - {""}
        if not dump:
            return
        books = [self.tracker.books.get(a) for a in dict.fromkeys(assets)]
        events = [book_event(b) for b in books if b is not None and b.synced]
        if events:
            conn.push(orjson.dumps(events).decode())

    async def _sender(self, conn: Conn) -> None:
        """The only writer of a connection: queued frames in batches, each batch one transport write."""
        queue = conn.queue
        with contextlib.suppress(ConnectionClosed, RuntimeError):  # RuntimeError: write after close
            while True:
                if not queue:
                    self._drained.set()
                    conn.wake.clear()
                    await conn.wake.wait()
                    continue
                batch = [queue.popleft() for _ in range(min(len(queue), MAX_BATCH))]
                await _write(conn.ws, batch)
                conn.sent += len(batch)
                if len(queue) <= LOW_WATER:
                    self._drained.set()

    # --- the timeline -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        """Records before the start rebuild state silently; the rest are paced from the first subscription."""
        records = replay_records(self.reader, on_problem=self._problem)
        pending = await self._fast_forward(records)
        self._anchor_shift(pending)
        self.ready.set()
        await self.subscribed.wait()
        loop = asyncio.get_running_loop()
        wall0, replay0 = loop.time(), None
        for count, record in enumerate(_chain(pending, records)):
            if replay0 is None:
                replay0 = record.received_ns
            if self.speed is not None:
                delay = wall0 + (record.received_ns - replay0) / 1e9 / self.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            self._apply(record, send=True)
            if self.speed is None:
                await self._backpressure(count)
        self.finished.set()

    def _anchor_shift(self, first: Record | None) -> None:
        """`--shift-to`: Gamma's times move by (target − the first record played), in whole seconds."""
        anchor = first.received_ns if first is not None else self.start_ns
        if self.shift_to is None or anchor is None:
            return
        target = time.time_ns() if self.shift_to == "now" else self.shift_to
        self.shift_ns = round((target - anchor) / 1e9) * 1_000_000_000

    async def _fast_forward(self, records: Iterator[Record]) -> Record | None:
        """Rebuild state from every record before `start_ns`; returns the first record at or after it.

        Yields to the event loop now and then, so HTTP is answered and clients can connect meanwhile."""
        for count, record in enumerate(records):
            if self.start_ns is None or record.received_ns >= self.start_ns:
                return record
            self._apply(record, send=False)
            self.stats.skipped_before_start += 1
            if count % FAST_FORWARD_YIELD == 0:
                await asyncio.sleep(0)
        return None

    async def _backpressure(self, count: int) -> None:
        """--speed max: let the senders run, and wait while any client is HIGH_WATER frames behind."""
        if count % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        while any(len(c.queue) > HIGH_WATER for c in self.conns):
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), 0.05)

    def _apply(self, record: Record, *, send: bool) -> None:
        """One record: a frame updates the books and (if `send`) goes to the connections it concerns."""
        self.stats.records += 1
        self.replay_ns = record.received_ns
        if record.record_type != "ws_frame":
            return
        row = record.row
        if row.get("frame_shape") == "control":
            return
        events = iter_events(row.get("json"))
        for event in events:
            self.tracker.observe(event)
        if not send:
            return
        self.stats.frames += 1
        if row.get("opcode") == "binary":
            self._fanout(base64.b64decode(row.get("raw_base64") or ""), None, None)
            return
        assets: set[str] = set()
        markets: set[str] = set()
        broadcast = not events
        for event in events:
            ids = event_asset_ids(event)
            if event.get("event_type") == "new_market":
                broadcast = True
            elif ids:
                assets.update(ids)
            elif isinstance(event.get("market"), str):
                markets.add(event["market"])
        broadcast = broadcast or not (assets or markets)
        text = str(row.get("raw_text", ""))
        self._fanout(text, None if broadcast else assets, None if broadcast else markets)

    def _fanout(self, payload: Outgoing, assets: set[str] | None, markets: set[str] | None) -> None:
        """Queue a frame for every connection it concerns (None: every connection)."""
        for conn in list(self.conns):
            if assets is not None and markets is not None:
                if conn.assets.isdisjoint(assets) and conn.markets.isdisjoint(markets):
                    continue
            conn.push(payload)
            self.stats.frames_sent += 1
            if len(conn.queue) > MAX_QUEUE:  # paced, and the client stopped reading: let it go
                conn.queue.clear()
                conn.ws.transport.abort()
                self.conns.discard(conn)


async def _write(ws: ServerConnection, batch: list[Outgoing]) -> None:
    """Frame a batch with the connection's sans-I/O protocol and write it at once, then wait for the
    write buffer to drain (what `send()` does per message, one syscall per batch: as `pmws.sim.ws`)."""
    async with ws.send_context():
        protocol = ws.protocol
        for item in batch:
            if isinstance(item, str):
                protocol.send_text(item.encode())
            else:
                protocol.send_binary(item)
        ws.transport.write(b"".join(protocol.data_to_send()))
    await ws.drain()


def _chain(first: Record | None, rest: Iterator[Record]) -> Iterator[Record]:
    if first is not None:
        yield first
    yield from rest


def _only_market_path(connection: ServerConnection, request: WsRequest) -> WsResponse | None:
    """Any path but /ws/market is 404, as live (§1, [I20])."""
    if request.path.split("?", 1)[0] != WS_PATH:
        return connection.respond(404, "Not Found\n")
    return None


async def serve_replay(
    replay: Replay, host: str, port: int, http_port: int, on_ready: Callable[[Replay], None]
) -> Any:
    """Run a replay until cancelled (Ctrl-C), calling `on_ready` once its URLs are known."""
    await replay.start(host, port, http_port)
    try:
        on_ready(replay)
        await asyncio.Event().wait()
    finally:
        await replay.stop()
