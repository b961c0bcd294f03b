"""The Simulator: Gamma + CLOB REST on one HTTP port, the market websocket on another."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from pmws.sim.catalog import Catalog
from pmws.sim.config import Faults, SentFrame, SimConfig
from pmws.sim.engine import Engine
from pmws.sim.http import HttpServer
from pmws.sim.rest import RestApi
from pmws.sim.tls import server_context
from pmws.sim.traffic import Traffic
from pmws.sim.ws import MarketChannel

T = TypeVar("T")


def _url_host(host: str) -> str:
    """The host to put in URLs (wildcards become loopback)."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


class Simulator:
    """A local, protocol-faithful stand-in for Polymarket's Gamma, CLOB /books and market websocket."""

    def __init__(self, config: SimConfig | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config or SimConfig()
        self.clock = clock  # may be replaced on a running simulator; always read through self.clock
        self.catalog = Catalog(
            self.config.windows,
            self.config.markets_per_window,
            self.config.past_markets_per_window,
            self.config.filler_markets,
        )
        self.engine = Engine(self.config, self.catalog, lambda: self.clock())
        self.rest = RestApi(self.catalog, self.engine, lambda: self.faults, lambda: self.clock())
        self.traffic = Traffic(self.config)
        self.gamma_url = self.clob_url = self.ws_url = ""
        self._http = HttpServer(self.rest)
        self._channel: MarketChannel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    @property
    def faults(self) -> Faults:
        """The live fault switches (the same object as `config.faults`)."""
        return self.config.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.config.faults = value

    async def start(self, host: str = "127.0.0.1", port: int = 0, ws_port: int = 0) -> None:
        """Bind both ports (0 = any free port) and start streaming to subscribers.

        With `config.tls_cert` the websocket is served over TLS and `ws_url` is `wss://…`.
        """
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        await self._http.start(host, port)
        self._channel = MarketChannel(self)
        try:
            tls = server_context(self.config.tls_cert, self.config.tls_key) if self.config.tls_cert else None
            await self._channel.start(host, ws_port, tls=tls)
        except BaseException:
            await self._http.close()
            raise
        base = f"http://{_url_host(host)}:{self._http.port}"
        self.gamma_url, self.clob_url = f"{base}/gamma", f"{base}/clob"
        scheme = "wss" if tls is not None else "ws"
        self.ws_url = f"{scheme}://{_url_host(host)}:{self._channel.port}/ws/market"

    async def stop(self) -> None:
        """Close every server, connection and task (well under a second)."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        await self._http.close()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def markets(self) -> list[dict[str, Any]]:
        """Every Gamma market object listed now (unfiltered, Gamma's default order)."""
        return self._call(lambda: self.rest.market_objects(self.catalog.listing(self.clock())))

    def book_summary(self, token_id: str) -> dict[str, Any]:
        """The REST summary of a token right now (what POST /books would answer); KeyError if unknown."""

        def summary() -> dict[str, Any]:
            """The summary, or KeyError."""
            book = self.engine.token_book(token_id)
            if book is None:
                raise KeyError(token_id)
            return book.summary()

        return self._call(summary)

    def run_in_thread(self, host: str = "127.0.0.1", port: int = 0, ws_port: int = 0) -> SimulatorThread:
        """Start on a private event loop in a daemon thread; returns once both ports are bound."""
        return SimulatorThread(self, host, port, ws_port)

    @property
    def sent_frames(self) -> list[SentFrame]:
        """Every frame handed to a transport, in order (see `Traffic`)."""
        return self.traffic.sent_frames

    @property
    def connections_opened(self) -> int:
        return self.traffic.connections_opened

    @property
    def subscriptions(self) -> list[tuple[int, str, list[str]]]:
        """(connection id, "initial" | "subscribe" | "unsubscribe", asset ids), in order."""
        return self.traffic.subscriptions

    def _call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the simulator's loop when called from another thread (the state is not locked)."""
        loop = self._loop
        if loop is None or not loop.is_running() or threading.get_ident() == self._loop_thread:
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            """Runs on the loop; hands the outcome back."""
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the calling thread
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(timeout=10)


class SimulatorThread:
    """A simulator running on its own event loop in a daemon thread (sync tests, `--simulate`)."""

    def __init__(self, sim: Simulator, host: str, port: int, ws_port: int) -> None:
        self.sim = sim
        self._args = (host, port, ws_port)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pmws-simulator", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            self._thread.join(5)
            raise self._error

    @property
    def gamma_url(self) -> str:
        """Gamma base URL."""
        return self.sim.gamma_url

    @property
    def clob_url(self) -> str:
        """CLOB base URL."""
        return self.sim.clob_url

    @property
    def ws_url(self) -> str:
        """Market websocket URL."""
        return self.sim.ws_url

    def _run(self) -> None:
        """Thread body: start, serve until stopped, clean up."""
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.sim.start(*self._args))
        except BaseException as exc:
            self._error = exc
        self._ready.set()
        if self._error is None:
            loop.run_forever()
        _finish(loop)

    def stop(self) -> None:
        """Stop the simulator and its thread; safe to call twice."""
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self.sim.stop(), self._loop)
        with contextlib.suppress(concurrent.futures.TimeoutError):
            future.result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> SimulatorThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel anything left and close the loop."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


async def serve_forever(
    config: SimConfig, host: str, port: int, ws_port: int, on_ready: Callable[[Simulator], None]
) -> None:
    """Run a simulator until cancelled (Ctrl-C), calling `on_ready` once its URLs are known."""
    sim = Simulator(config)
    await sim.start(host, port, ws_port)
    try:
        on_ready(sim)
        await asyncio.Event().wait()
    finally:
        await sim.stop()
