"""The simulator over real loopback sockets: Gamma, CLOB /books, the market websocket and every fault."""

from __future__ import annotations

import asyncio
import calendar
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from pmws.book import summary_hash
from pmws.sim import Faults, SimConfig, Simulator
from tests.conftest import TIME_FACTOR
from tests.unit.test_sim_engine import Replay


def fast() -> SimConfig:
    """A fresh config (each has its own Faults) streaming 400 frames/s."""
    return SimConfig(rate_per_second=400.0)


def run(config: SimConfig, body: Callable[[Simulator], Awaitable[None]], *, clock: Any = None) -> None:
    """Start a simulator, run `body` against it, stop it."""

    async def main() -> None:
        sim = Simulator(config, clock=clock) if clock else Simulator(config)
        async with sim:
            await body(sim)

    asyncio.run(main())


async def get(sim: Simulator, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(sim.gamma_url + path, **kwargs)


async def live_tokens(sim: Simulator, markets: int = 2) -> list[str]:
    """Token ids of the first `markets` live BTC windows, from Gamma."""
    objs = (await get(sim, "/markets", params={"closed": "false"})).json()
    live = [m for m in objs if m["slug"].startswith("btc-updown-") and m["acceptingOrders"]]
    return [t for m in live[:markets] for t in json.loads(m["clobTokenIds"])]


async def subscribe(sim: Simulator, tokens: list[str], *, custom: bool = True) -> ClientConnection:
    ws = await connect(sim.ws_url, close_timeout=1)
    await ws.send(json.dumps({"assets_ids": tokens, "type": "market", "custom_feature_enabled": custom}))
    return ws


async def frames_until_quiet(ws: ClientConnection, quiet: float = 0.3, limit: int = 100_000) -> list[bytes]:
    out: list[bytes] = []
    while len(out) < limit:
        try:
            out.append(await asyncio.wait_for(ws.recv(decode=False), quiet * TIME_FACTOR))
        except TimeoutError:
            break
    return out


async def frames_for(ws: ClientConnection, seconds: float) -> list[bytes]:
    out: list[bytes] = []
    deadline = time.monotonic() + seconds * TIME_FACTOR
    while (left := deadline - time.monotonic()) > 0:
        try:
            out.append(await asyncio.wait_for(ws.recv(decode=False), left))
        except TimeoutError:
            break
    return out


def events_of(frames: list[bytes]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for frame in frames:
        if frame == b"PONG":
            continue
        parsed = orjson.loads(frame)
        out.extend(parsed if isinstance(parsed, list) else [parsed])
    return out


def sent_on(sim: Simulator, connection_id: int) -> list[bytes]:
    return [f.payload for f in sim.sent_frames if f.connection_id == connection_id]


# --- Gamma -------------------------------------------------------------------------------------------------


def test_gamma_markets_pagination_cap_filters_and_shapes() -> None:
    async def body(sim: Simulator) -> None:
        everything = sim.markets()
        assert len(everything) > 150
        response = await get(sim, "/markets", params={"limit": "1000"})
        assert response.status_code == 200
        assert len(response.json()) == 100  # silently capped (§6.1)
        assert response.headers["set-cookie"].startswith("__cf_bm=") and response.headers["cf-ray"]
        pages = [
            (await get(sim, "/markets", params={"limit": "100", "offset": str(o)})).json() for o in (0, 100)
        ]
        ids = [m["id"] for page in pages for m in page]
        open_count = len([m for m in everything if not m["closed"]])
        assert len(ids) == len(set(ids)) == open_count  # closed=false is the default
        assert response.headers["deprecation"] == "true" and response.headers["sunset"]
        deep = await get(sim, "/markets", params={"offset": "2001"})
        assert deep.status_code == 422 and deep.headers["deprecation"] == "true"
        assert deep.json() == {"error": "offset too large, use /markets/keyset for deeper pagination"}
        assert (await get(sim, "/markets", params={"offset": "2000"})).json() == []
        slugs = [everything[5]["slug"], everything[9]["slug"]]
        chosen = (await get(sim, "/markets", params=[("slug", s) for s in slugs])).json()
        assert sorted(m["slug"] for m in chosen) == sorted(slugs)
        open_ = (
            await get(sim, "/markets", params={"closed": "false", "order": "endDate", "ascending": "true"})
        ).json()
        assert open_ and all(m["closed"] is False for m in open_)
        assert [m["endDate"] for m in open_] == sorted(m["endDate"] for m in open_)
        zombies = [m for m in open_ if not m["acceptingOrders"]]
        assert zombies and all(m["active"] and not m["closed"] for m in zombies)
        closed = (await get(sim, "/markets", params={"closed": "true"})).json()
        assert closed and all(m["closed"] for m in closed)
        for market in everything:
            assert isinstance(market["clobTokenIds"], str) and isinstance(market["outcomes"], str)
            assert len(json.loads(market["clobTokenIds"])) == 2
            assert json.loads(market["outcomes"]) in (
                ["Up", "Down"],
                ["Down", "Up"],
                ["Yes", "No"],
                ["No", "Yes"],
            )
        assert any(not m["slug"].startswith(("btc-updown-", "bitcoin-up-or-down-")) for m in everything)

    run(SimConfig(markets_per_window=40), body)


def test_gamma_keyset_pages_over_http() -> None:
    async def body(sim: Simulator) -> None:
        params = {"limit": "100", "order": "endDate", "ascending": "true"}
        first = await get(sim, "/markets/keyset", params=params)
        assert first.status_code == 200 and "deprecation" not in first.headers
        page = first.json()
        assert set(page) == {"markets", "next_cursor"} and len(page["markets"]) == 100
        seen = [m["slug"] for m in page["markets"]]
        while "next_cursor" in page:
            following = {**params, "after_cursor": page["next_cursor"]}
            page = (await get(sim, "/markets/keyset", params=following)).json()
            seen += [m["slug"] for m in page["markets"]]
        assert len(seen) == len(set(seen)) == len([m for m in sim.markets() if not m["closed"]])
        assert len([s for s in seen if s.startswith("filler-")]) == 250
        cursor = first.json()["next_cursor"]
        again = (await get(sim, "/markets/keyset", params={**params, "cursor": cursor})).json()
        assert [m["slug"] for m in again["markets"]] == seen[:100]  # `cursor=` is ignored: page 1 again
        for bad in ({"offset": "0"}, {"order": "end_date"}, {"after_cursor": "junk"}):
            refused = await get(sim, "/markets/keyset", params={**params, **bad})
            assert refused.status_code == 422 and refused.json()["error"]
        assert (await get(sim, "/markets", params={"order": "end_date"})).json() == {
            "error": "order fields are not valid"
        }

    run(SimConfig(filler_markets=250), body)


def test_gamma_events_and_time_filters() -> None:
    async def body(sim: Simulator) -> None:
        events = (await get(sim, "/events", params={"closed": "false", "limit": "5"})).json()
        assert len(events) == 5
        for event in events:
            assert len(event["markets"]) == 1 and "events" not in event["markets"][0]
            assert event["slug"] == event["markets"][0]["slug"]
        now = time.time()
        params = {
            "end_date_min": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "end_date_max": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 1800)),
        }
        soon = (await get(sim, "/markets", params=params)).json()
        assert soon and all(m["acceptingOrders"] for m in soon)
        assert (await get(sim, "/markets", params={"end_date_min": "yesterday"})).status_code == 422
        slug = soon[0]["slug"]
        assert (await get(sim, f"/markets/slug/{slug}")).json()["slug"] == slug
        assert (await get(sim, f"/events/slug/{slug}")).json()["markets"][0]["slug"] == slug
        assert (await get(sim, "/markets/slug/no-such-market")).status_code == 404
        assert (await get(sim, "/nowhere")).status_code == 404

    run(SimConfig(), body)


# --- CLOB ---------------------------------------------------------------------------------------------------


def test_books_and_book_answer_current_summaries() -> None:
    async def body(sim: Simulator) -> None:
        tokens = await live_tokens(sim, 1)
        async with httpx.AsyncClient(base_url=sim.clob_url) as client:
            response = await client.post("/books", json=[{"token_id": t} for t in [*tokens, "123"]])
            assert response.status_code == 200 and "set-cookie" in response.headers
            books = response.json()
            assert [b["asset_id"] for b in books] == tokens  # unknown token omitted
            for book in books:
                assert list(book) == [
                    "market", "asset_id", "timestamp", "hash", "bids", "asks",
                    "min_order_size", "tick_size", "neg_risk", "last_trade_price",
                ]  # fmt: skip
                assert summary_hash(book) == book["hash"]
                assert book == sim.book_summary(book["asset_id"])
            one = await client.get("/book", params={"token_id": tokens[0]})
            assert one.json() == books[0]
            missing = await client.get("/book", params={"token_id": "123"})
            assert missing.status_code == 404
            assert missing.json() == {"error": "No orderbook exists for the requested token id"}
            bad = await client.post("/books", content=b"{not json")
            assert bad.status_code == 400 and "error" in bad.json()
            too_many = await client.post("/books", json=[{"token_id": tokens[0]}] * 501)
            assert too_many.status_code == 400

    run(SimConfig(), body)


def test_books_faults_status_retry_after_and_delay() -> None:
    async def body(sim: Simulator) -> None:
        tokens = await live_tokens(sim, 1)
        async with httpx.AsyncClient(base_url=sim.clob_url) as client:
            sim.faults.books_status, sim.faults.books_retry_after = 429, 1.5
            limited = await client.post("/books", json=[{"token_id": tokens[0]}])
            assert limited.status_code == 429 and limited.headers["retry-after"] == "1.5"
            sim.faults.books_retry_after, sim.faults.books_retry_after_body = None, 2.5
            hinted = await client.post("/books", json=[{"token_id": tokens[0]}])
            assert "retry-after" not in hinted.headers and hinted.json()["retry_after_seconds"] == 2.5
            sim.faults.books_status, sim.faults.books_retry_after = 500, None
            assert (await client.get("/book", params={"token_id": tokens[0]})).status_code == 500
            sim.faults.books_status, sim.faults.books_delay_seconds = None, 0.5
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/books", json=[{"token_id": tokens[0]}], timeout=0.1)
            sim.faults.books_delay_seconds = 0.0
            assert (await client.post("/books", json=[{"token_id": tokens[0]}])).status_code == 200

    run(SimConfig(), body)


# --- websocket: protocol -----------------------------------------------------------------------------------


def test_ping_before_subscription_is_closed_1008() -> None:
    async def body(sim: Simulator) -> None:
        async with connect(sim.ws_url) as ws:
            await ws.send("PING")
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 2 * TIME_FACTOR)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                1008,
                "invalid subscription payload",
            )

    run(SimConfig(), body)


def test_wrong_path_is_404_and_reject_status_is_429_with_retry_after() -> None:
    async def body(sim: Simulator) -> None:
        with pytest.raises(InvalidStatus) as wrong:
            await connect(sim.ws_url.replace("/ws/market", "/ws/"))
        assert wrong.value.response.status_code == 404
        sim.faults.ws_reject_status = 429
        with pytest.raises(InvalidStatus) as limited:
            await connect(sim.ws_url)
        assert limited.value.response.status_code == 429
        assert limited.value.response.headers["Retry-After"] == "1"

    run(SimConfig(), body)


def test_initial_dump_ping_pong_and_sent_frames_match_the_wire() -> None:
    async def body(sim: Simulator) -> None:
        tokens = await live_tokens(sim, 2)
        async with await subscribe(sim, [*tokens, "999"]) as ws:
            raw = await ws.recv(decode=False)
            dump = orjson.loads(raw)
            assert isinstance(dump, list) and [b["asset_id"] for b in dump] == tokens
            for book in dump:
                assert list(book) == [
                    "market", "asset_id", "timestamp", "hash", "bids", "asks", "tick_size", "event_type",
                    "last_trade_price",
                ]  # fmt: skip
                bids = [float(level["price"]) for level in book["bids"]]
                asks = [float(level["price"]) for level in book["asks"]]
                assert bids == sorted(bids) and asks == sorted(asks, reverse=True) and bids[-1] < asks[-1]
            await ws.send("PING")
            received = [raw, *await frames_for(ws, 0.3)]
            sim.faults.silent = True  # stop the stream so everything sent has been received
            received += await frames_until_quiet(ws, 0.2)
            assert b"PONG" in received
        connection = sim.subscriptions[-1][0]
        assert sim.subscriptions[-1] == (connection, "initial", [*tokens, "999"])
        assert sent_on(sim, connection) == received
        pong = next(f for f in sim.sent_frames if f.payload == b"PONG")
        assert not pong.is_market_data and pong.opcode == "text"
        assert all(f.is_market_data for f in sim.sent_frames if f.payload != b"PONG")
        stream = events_of(received[1:])
        kinds = {e["event_type"] for e in stream}
        assert {"price_change", "best_bid_ask"} <= kinds
        for event in stream:
            assert event.get("asset_id", tokens[0]) in tokens
            assert all(c["asset_id"] in tokens for c in event.get("price_changes", []))
            assert isinstance(event["timestamp"], str) and event["timestamp"].isdigit()

    run(SimConfig(rate_per_second=200.0), body)


def test_rebuilt_books_reach_the_rest_hash_with_zero_mismatches() -> None:
    config = SimConfig(rate_per_second=0.0, trade_every=3, tick_change_every=23, batch_array_every=3)

    async def body(sim: Simulator) -> None:
        tokens = await live_tokens(sim, 2)
        replay = Replay()
        async with await subscribe(sim, tokens) as ws:
            frames = await frames_for(ws, 1.0)
            sim.faults.silent = True
            frames += await frames_until_quiet(ws)
        for frame in frames:
            replay.frame(frame)
        kinds = {e["event_type"] for e in events_of(frames)}
        assert {"book", "price_change", "last_trade_price", "tick_size_change"} <= kinds
        assert not replay.mismatched
        assert replay.verified > 500
        async with httpx.AsyncClient() as client:
            books = (
                await client.post(sim.clob_url + "/books", json=[{"token_id": t} for t in tokens])
            ).json()
        for book in books:
            assert replay.books[book["asset_id"]].hash() == book["hash"]
        assert sent_on(sim, sim.connections_opened) == frames

    run(config, body)


def test_dynamic_subscribe_and_unsubscribe() -> None:
    async def body(sim: Simulator) -> None:
        tokens = await live_tokens(sim, 2)
        first, second = tokens[:2], tokens[2:]
        async with await subscribe(sim, first) as ws:
            await frames_for(ws, 0.2)
            await ws.send(json.dumps({"assets_ids": second, "operation": "subscribe"}))
            after = events_of(await frames_for(ws, 0.3))
            books = [e["asset_id"] for e in after if e["event_type"] == "book" and "tick_size" in e]
            assert books[:2] == second
            await ws.send(json.dumps({"assets_ids": first, "operation": "unsubscribe"}))
            await frames_for(ws, 0.1)  # what was already queued
            later = events_of(await frames_for(ws, 0.4))
            assert later
            for event in later:
                assets = [event.get("asset_id")] + [c["asset_id"] for c in event.get("price_changes", [])]
                assert not set(assets) & set(first)
        kinds = [(kind, assets) for _, kind, assets in sim.subscriptions]
        assert kinds == [("initial", first), ("subscribe", second), ("unsubscribe", first)]

    run(fast(), body)


def test_initial_dump_false_sends_no_books_on_subscribe() -> None:
    async def body(sim: Simulator) -> None:
        tokens = await live_tokens(sim, 2)
        first, second = tokens[:2], tokens[2:]
        async with await connect(sim.ws_url, close_timeout=1) as ws:
            await ws.send(json.dumps({"assets_ids": first, "type": "market", "initial_dump": False}))
            opening = events_of(await frames_for(ws, 0.3))
            assert not [e for e in opening if e["event_type"] == "book" and "tick_size" in e]
            await ws.send(json.dumps({"assets_ids": second, "operation": "subscribe", "initial_dump": False}))
            added = events_of(await frames_for(ws, 0.3))
            assert not [e for e in added if e["event_type"] == "book" and e["asset_id"] in second]
            await ws.send(json.dumps({"assets_ids": second, "operation": "subscribe", "initial_dump": True}))
            again = events_of(await frames_for(ws, 0.3))
            books = [e["asset_id"] for e in again if e["event_type"] == "book" and "tick_size" in e]
            assert books[:2] == second

    run(SimConfig(rate_per_second=5.0), body)


def test_custom_features_only_for_custom_subscribers_and_lifecycle_events() -> None:
    now = {"t": time.time()}

    async def body(sim: Simulator) -> None:
        tokens = await live_tokens(sim, 1)
        async with (
            await subscribe(sim, tokens, custom=False) as plain,
            await subscribe(sim, tokens) as custom,
        ):
            await asyncio.sleep(0.3 * TIME_FACTOR)  # let the lifecycle task learn what exists
            ends = [m["endDate"] for m in sim.markets() if json.loads(m["clobTokenIds"]) == tokens]
            end = calendar.timegm(time.strptime(ends[0], "%Y-%m-%dT%H:%M:%SZ"))
            now["t"] = end + 1
            custom_events = events_of(await frames_for(custom, 0.8))
            plain_events = events_of(await frames_for(plain, 0.1))
        custom_kinds = {e["event_type"] for e in custom_events}
        assert {"best_bid_ask", "market_resolved", "new_market"} <= custom_kinds
        assert not {"best_bid_ask", "market_resolved", "new_market"} & {e["event_type"] for e in plain_events}
        resolved = next(e for e in custom_events if e["event_type"] == "market_resolved")
        assert resolved["assets_ids"] == tokens and resolved["winning_asset_id"] in tokens
        assert resolved["event_message"] is None and "asset_id" not in resolved

    run(SimConfig(rate_per_second=100.0, windows=["5m"]), body, clock=lambda: now["t"])


# --- websocket: faults --------------------------------------------------------------------------------------


def test_drop_after_frames_aborts_each_connection_without_a_close_frame() -> None:
    async def body(sim: Simulator) -> None:
        tokens = await live_tokens(sim, 1)
        sim.faults.drop_after_frames = 5
        for _ in range(2):
            async with await subscribe(sim, tokens) as ws:
                received: list[bytes] = []
                with pytest.raises(ConnectionClosedError) as closed:
                    while True:
                        received.append(await asyncio.wait_for(ws.recv(decode=False), 2 * TIME_FACTOR))
                assert closed.value.rcvd is None  # no close frame
                assert received == sent_on(sim, sim.connections_opened)
                assert len(received) == 5

    run(fast(), body)


def test_silent_stops_data_but_pong_continues() -> None:
    async def body(sim: Simulator) -> None:
        tokens = await live_tokens(sim, 1)
        async with await subscribe(sim, tokens) as ws:
            assert await frames_for(ws, 0.2)
            sim.faults.silent = True
            await frames_until_quiet(ws, 0.2)
            await ws.send("PING")
            assert await frames_for(ws, 0.4) == [b"PONG"]
            sim.faults.silent = False
            assert len(await frames_for(ws, 0.2)) > 5

    run(fast(), body)


def test_pong_only_sends_nothing_but_pong() -> None:
    async def body(sim: Simulator) -> None:
        tokens = await live_tokens(sim, 1)
        sim.faults.pong_only = True
        async with await subscribe(sim, tokens) as ws:
            await ws.send("PING")
            assert await frames_for(ws, 0.4) == [b"PONG"]

    run(fast(), body)


def test_junk_frames_are_interleaved_and_recorded() -> None:
    faults = Faults(send_non_json_every=2, send_binary_every=3, send_unknown_event_every=4)

    async def body(sim: Simulator) -> None:
        tokens = await live_tokens(sim, 1)
        async with await subscribe(sim, tokens) as ws:
            received = await frames_for(ws, 0.4)
            sim.faults.silent = True
            received += await frames_until_quiet(ws, 0.2)
        assert b"garbage{not json" in received and b"\x00\x01binary" in received
        assert any(b'"settlement_preview"' in f for f in received)
        sent = [f for f in sim.sent_frames if f.connection_id == sim.connections_opened]
        assert [f.payload for f in sent] == received
        binary = [f for f in sent if f.opcode == "binary"]
        assert binary and all(f.payload == b"\x00\x01binary" and not f.is_market_data for f in binary)

    run(SimConfig(rate_per_second=200.0, faults=faults), body)


def test_stop_is_prompt_with_a_client_that_never_reads() -> None:
    async def main() -> float:
        sim = Simulator(SimConfig(rate_per_second=0.0))
        await sim.start()
        tokens = [m for m in sim.markets() if m["acceptingOrders"]][0]["clobTokenIds"]
        ws = await subscribe(sim, json.loads(tokens))
        await asyncio.sleep(0.5 * TIME_FACTOR)  # the socket buffers fill up
        began = time.monotonic()
        await sim.stop()
        elapsed = time.monotonic() - began
        ws.transport.abort()
        await ws.wait_closed()
        return elapsed

    assert asyncio.run(main()) < 1.0 * TIME_FACTOR


def test_run_in_thread_handle() -> None:
    handle = Simulator(fast()).run_in_thread()
    try:
        assert handle.gamma_url.endswith("/gamma") and handle.clob_url.endswith("/clob")
        assert handle.ws_url.startswith("ws://127.0.0.1:") and handle.ws_url.endswith("/ws/market")
        markets = handle.sim.markets()
        token = json.loads(markets[0]["clobTokenIds"])[0]
        response = httpx.post(handle.clob_url + "/books", json=[{"token_id": token}])
        assert response.json()[0]["hash"] == handle.sim.book_summary(token)["hash"]
    finally:
        began = time.monotonic()
        handle.stop()
        assert time.monotonic() - began < 1.5
