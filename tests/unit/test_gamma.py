"""Gamma fetching: predicted slugs, pagination, unreachable endpoints (respx)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
import respx

from pmws.errors import RestError
from pmws.gamma import fetch_btc_markets, predicted_slugs

NOW = datetime(2026, 3, 12, 9, 21, tzinfo=UTC)
URL = "https://gamma.example"


def fetch(**kwargs: object):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient() as client:
            return await fetch_btc_markets(
                client, URL, now=NOW, **{"windows": ["5m"], "lookahead_seconds": 600, **kwargs}
            )

    return asyncio.run(go())


def test_predicted_slugs_cover_the_current_and_coming_windows() -> None:
    assert predicted_slugs(["5m"], NOW, 600) == [
        "btc-updown-5m-1773307200",
        "btc-updown-5m-1773307500",
        "btc-updown-5m-1773307800",
    ]
    assert predicted_slugs(["1h"], NOW, 0) == ["bitcoin-up-or-down-march-12-2026-5am-et"]


@respx.mock
def test_slug_pass_then_pagination_until_a_short_page() -> None:
    pages = iter([[{"slug": "p0"}, {"slug": "p1"}], [{"slug": "last"}]])
    seen: list[httpx.QueryParams] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        if "slug" in request.url.params:
            return httpx.Response(200, json=[{"slug": "a"}])
        return httpx.Response(200, json=next(pages))

    respx.get(f"{URL}/markets").mock(side_effect=answer)
    result = fetch(page_limit=2)
    assert [o["slug"] for o in result.objects] == ["a", "p0", "p1", "last"]
    assert seen[0].get_list("slug") == predicted_slugs(["5m"], NOW, 600)
    assert [p["offset"] for p in seen[1:]] == ["0", "2"]
    assert all(p["closed"] == "false" and p["limit"] == "2" for p in seen[1:])


@respx.mock
def test_unreachable_gamma_is_one_clear_error() -> None:
    respx.get(f"{URL}/markets").mock(side_effect=httpx.ConnectError("Name or service not known"))
    with pytest.raises(RestError, match="cannot reach https://gamma.example/markets: DNS lookup failed"):
        fetch()


@respx.mock
def test_gamma_422_on_deep_offsets_stops_pagination_without_failing() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if "slug" in request.url.params:
            return httpx.Response(200, json=[])
        return httpx.Response(422, json={"error": "offset"})

    respx.get(f"{URL}/markets").mock(side_effect=answer)
    result = fetch()
    assert result.objects == [] and result.failed_requests == 1
