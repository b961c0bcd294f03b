"""REST /books checkpoint edge cases through httpx's mock transport (respx)."""

from __future__ import annotations

import asyncio
import json

import httpx
import respx

from pmws.config import load_config
from pmws.health import RestTotals
from pmws.rest import checkpoint_books, checkpoint_loop

URL = "https://clob.example"
BOOK = {"market": "0x1", "asset_id": "1", "timestamp": "5", "hash": "h", "bids": [], "asks": []}


def run(**kwargs: object):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient() as client:
            return await checkpoint_books(
                client,
                URL,
                ["1", "2"],
                session_id="S",
                checkpoint_sequence=1,
                **{"max_attempts": 3, "retry_max_seconds": 0.05, **kwargs},
            )

    return asyncio.run(go())


@respx.mock
def test_success_keeps_only_safe_headers_and_the_raw_json() -> None:
    route = respx.post(f"{URL}/books").respond(
        200,
        json=[BOOK],
        headers={"set-cookie": "__cf_bm=secret", "authorization": "x", "cf-ray": "abc", "x-api-key": "k"},
    )
    result = run()
    assert result.ok and result.books == [BOOK]
    (row,) = result.rows
    assert json.loads(route.calls[0].request.content) == [{"token_id": "1"}, {"token_id": "2"}]
    assert row["response_headers"] == {
        "cf-ray": "abc",
        "content-type": "application/json",
        "content-length": row["response_headers"]["content-length"],
    }
    assert "secret" not in json.dumps(row)
    assert row["response"]["raw_response_json"] == [BOOK]
    assert row["request"] == {"method": "POST", "url": f"{URL}/books", "token_ids": ["1", "2"]}


@respx.mock
def test_429_honours_retry_after_then_succeeds_each_attempt_a_row() -> None:
    respx.post(f"{URL}/books").mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after": "0.01"}),
            httpx.Response(500),
            httpx.Response(200, json=[BOOK]),
        ]
    )
    result = run()
    assert result.ok
    assert [r["status_code"] for r in result.rows] == [429, 500, 200]
    assert [r["attempt"] for r in result.rows] == [1, 2, 3]
    assert (
        result.rows[0]["error"] == "HTTP 429" and result.rows[0]["response_headers"]["retry-after"] == "0.01"
    )


@respx.mock
def test_timeouts_and_connection_errors_are_rows_not_exceptions() -> None:
    respx.post(f"{URL}/books").mock(side_effect=[httpx.ReadTimeout("slow"), httpx.ConnectError("refused")])
    result = run(max_attempts=2)
    assert not result.ok
    assert [r["status_code"] for r in result.rows] == [None, None]
    assert "ReadTimeout" in result.rows[0]["error"] and "ConnectError" in result.rows[1]["error"]


@respx.mock
def test_client_errors_are_not_retried_and_garbage_is_an_error() -> None:
    respx.post(f"{URL}/books").respond(400, text="bad request")
    result = run()
    assert len(result.rows) == 1 and result.rows[0]["response"]["body_preview"] == "bad request"
    respx.post(f"{URL}/books").respond(200, text="<html>")
    result = run(max_attempts=1)
    assert not result.ok and "not JSON" in result.rows[0]["error"]


@respx.mock
def test_more_than_500_tokens_are_split() -> None:
    route = respx.post(f"{URL}/books").respond(200, json=[BOOK])

    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient() as client:
            return await checkpoint_books(
                client, URL, [str(i) for i in range(1100)], session_id="S", checkpoint_sequence=1
            )

    result = asyncio.run(go())
    assert route.call_count == 3 and result.ok and len(result.books) == 3


@respx.mock
def test_batch_size_splits_the_tokens_into_requests_of_that_size() -> None:
    route = respx.post(f"{URL}/books").respond(200, json=[BOOK])
    result = run_tokens([str(i) for i in range(7)], batch_size=3)
    sizes = [len(json.loads(call.request.content)) for call in route.calls]
    assert sizes == [3, 3, 1] and result.ok
    run_tokens([str(i) for i in range(1001)], batch_size=5000)  # never more than the documented 500
    assert [len(json.loads(call.request.content)) for call in route.calls[3:]] == [500, 500, 1]


@respx.mock
def test_429_waits_for_the_body_hint_retry_after_seconds(slept: list[float]) -> None:
    respx.post(f"{URL}/books").mock(
        side_effect=[
            httpx.Response(429, json={"error": "Too Many Requests", "retry_after_seconds": 4}),
            httpx.Response(200, json=[BOOK]),
        ]
    )
    result = run(retry_max_seconds=10)
    assert result.ok and slept == [4]


@respx.mock
def test_ratelimit_headers_are_not_kept() -> None:
    respx.post(f"{URL}/books").respond(200, json=[BOOK], headers={"x-ratelimit-remaining": "3"})
    assert "x-ratelimit-remaining" not in run().rows[0]["response_headers"]


def run_tokens(tokens: list[str], **kwargs: object):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient() as client:
            return await checkpoint_books(
                client, URL, tokens, session_id="S", checkpoint_sequence=1, **kwargs
            )

    return asyncio.run(go())


def loop_until(checkpoints: int, tokens: list[list[str]]):  # type: ignore[no-untyped-def]
    """Run checkpoint_loop with `tokens` in turn per round until it made `checkpoints` checkpoints."""
    totals = RestTotals()
    rows: list[dict[str, object]] = []
    books: list[list[dict[str, object]]] = []
    rounds = iter(tokens)

    async def go() -> None:
        stop = asyncio.Event()

        def next_tokens() -> list[str]:
            if totals.checkpoints >= checkpoints:
                stop.set()
                return []
            return next(rounds, ["1"])

        async def on_books(got: list[dict[str, object]]) -> None:
            books.append(got)

        settings = load_config().rest
        settings.max_attempts, settings.retry_max_seconds = 2, 0.01
        async with httpx.AsyncClient() as client:
            await checkpoint_loop(
                client,
                URL,
                next_tokens,
                totals,
                settings=settings,
                interval=0.0,
                session_id="S",
                stop=stop,
                write=rows.append,
                on_books=on_books,
            )

    asyncio.run(go())
    return totals, rows, books


@respx.mock
def test_loop_skips_empty_token_lists_and_numbers_only_real_checkpoints() -> None:
    route = respx.post(f"{URL}/books").respond(200, json=[BOOK])
    totals, rows, books = loop_until(2, [[], ["1"], [], ["1", "2"]])
    assert route.call_count == 2
    assert [r["checkpoint_sequence"] for r in rows] == [1, 2]
    assert [r["request"]["token_ids"] for r in rows] == [["1"], ["1", "2"]]  # type: ignore[index]
    assert totals == RestTotals(checkpoints=2, ok=2, failed=0, failed_attempts=0)
    assert books == [[BOOK], [BOOK]]


@respx.mock
def test_loop_counts_failed_attempts_and_checkpoints_and_skips_on_books() -> None:
    respx.post(f"{URL}/books").mock(
        side_effect=[
            httpx.Response(500),
            httpx.Response(500),
            httpx.Response(500),
            httpx.Response(200, json=[BOOK]),
        ]
    )
    totals, rows, books = loop_until(2, [])
    assert [(r["checkpoint_sequence"], r["attempt"], r["ok"]) for r in rows] == [
        (1, 1, False),
        (1, 2, False),
        (2, 1, False),
        (2, 2, True),
    ]
    assert totals == RestTotals(checkpoints=2, ok=1, failed=1, failed_attempts=3)
    assert books == [[BOOK]]
