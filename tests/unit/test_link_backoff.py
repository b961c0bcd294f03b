"""A real websocket server on loopback that keeps closing connections: the link's reconnect delays grow."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from pmws.config import Websocket
from pmws.envelope import TrackedToken
from pmws.feed import Link, Sequencer
from tests.unit.test_recorder import Quiet

BOOK = json.dumps({"event_type": "book", "asset_id": "A", "market": "M", "bids": [], "asks": [], "hash": "x"})


class Events(Quiet):
    """A frame handler that only keeps the lifecycle events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def on_lifecycle(self, event: str, link: Link, details: dict[str, Any]) -> None:
        self.events.append((event, details))


def delays_against(mode: str, seconds: float = 2.0) -> list[float]:
    """Reconnect delays of a link against a server that serves the first connection normally, then either
    closes each new one right after the handshake (`handshake`) or right after the initial book (`dump`)."""
    served = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal served
        served += 1
        if mode == "handshake" and served > 1:
            await ws.close(1013, "try again later")
            return
        await ws.recv()  # the subscription
        await ws.send(BOOK)
        await asyncio.sleep(0.05)
        await ws.close(1013, "try again later")

    async def run() -> list[float]:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            events, stop = Events(), asyncio.Event()
            settings = Websocket(reconnect_initial_seconds=0.1, reconnect_max_seconds=2.0, handoff_batch_ms=0)
            token = TrackedToken("m", "M", "A", "Up", "2030-01-01T00:00:00Z")
            link = Link(
                slot=0,
                url=f"ws://127.0.0.1:{port}",
                tokens=(token,),
                settings=settings,
                handler=events,
                sequencer=Sequencer(),
                session_id="S",
                stop=stop,
            )
            task = asyncio.create_task(link.run())
            await asyncio.sleep(seconds)
            stop.set()
            await task
        return [d["delay_seconds"] for e, d in events.events if e == "reconnect_scheduled"]

    return asyncio.run(run())


def test_a_server_that_closes_every_new_connection_is_retried_with_growing_delays() -> None:
    for mode in ("handshake", "dump"):  # right after the upgrade; right after the initial book dump
        delays = delays_against(mode)
        assert 2 <= len(delays) <= 7, (mode, delays)  # not a reconnect every ~0.1 s (about 25 in 2 s)
        assert max(delays) >= 0.35, (mode, delays)  # the backoff grew towards its cap
