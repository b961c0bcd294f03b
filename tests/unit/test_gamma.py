"""Gamma fetching: predicted slugs, keyset pagination, failures and wrong shapes (respx)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
import respx

from pmws.errors import DiscoveryError, RestError
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
def test_slug_pass_then_keyset_pages_until_next_cursor_is_absent() -> None:
    pages = {
        None: {"markets": [{"slug": "p0"}, {"slug": "p1"}], "next_cursor": "c1"},
        "c1": {"markets": [{"slug": "p2"}, {"slug": "p3"}], "next_cursor": "c2"},
        "c2": {"markets": [{"slug": "last"}]},
    }
    seen: list[httpx.QueryParams] = []

    def listing(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params)
        return httpx.Response(200, json=pages[request.url.params.get("after_cursor")])

    respx.get(f"{URL}/markets").mock(return_value=httpx.Response(200, json=[{"slug": "a"}]))
    slug_route = respx.routes[0]
    respx.get(f"{URL}/markets/keyset").mock(side_effect=listing)
    result = fetch(page_limit=2)
    assert [o["slug"] for o in result.objects] == ["a", "p0", "p1", "p2", "p3", "last"]
    assert slug_route.calls[0].request.url.params.get_list("slug") == predicted_slugs(["5m"], NOW, 600)
    assert [p.get("after_cursor") for p in seen] == [None, "c1", "c2"]
    assert all(
        p["closed"] == "false" and p["limit"] == "2" and p["order"] == "endDate" and "offset" not in p
        for p in seen
    )
    assert (result.requests, result.failed_requests, result.pages) == (4, 0, 3)


@respx.mock
def test_page_limit_is_capped_at_100() -> None:
    respx.get(f"{URL}/markets").mock(return_value=httpx.Response(200, json=[]))
    route = respx.get(f"{URL}/markets/keyset").mock(return_value=httpx.Response(200, json={"markets": []}))
    fetch(page_limit=500)
    assert route.calls[0].request.url.params["limit"] == "100"


@respx.mock
def test_more_pages_than_max_pages_is_an_error_not_a_silent_cut() -> None:
    respx.get(f"{URL}/markets").mock(return_value=httpx.Response(200, json=[]))
    respx.get(f"{URL}/markets/keyset").mock(
        return_value=httpx.Response(200, json={"markets": [{"slug": "x"}], "next_cursor": "again"})
    )
    with pytest.raises(DiscoveryError, match=r"more than 3 pages .* raise discovery.max_pages"):
        fetch(max_pages=3)


@respx.mock
def test_unreachable_gamma_is_one_clear_error() -> None:
    respx.get(f"{URL}/markets").mock(side_effect=httpx.ConnectError("Name or service not known"))
    with pytest.raises(RestError, match="cannot reach https://gamma.example/markets: DNS lookup failed"):
        fetch()


@respx.mock
def test_a_failed_listing_page_fails_the_discovery_with_the_reason() -> None:
    respx.get(f"{URL}/markets").mock(return_value=httpx.Response(200, json=[]))
    respx.get(f"{URL}/markets/keyset").mock(
        return_value=httpx.Response(422, json={"error": "order fields are not valid"})
    )
    with pytest.raises(
        DiscoveryError, match=r"1 request\(s\) failed .*HTTP 422 \(order fields are not valid\)"
    ):
        fetch()


@pytest.mark.parametrize(
    ("slug_answer", "keyset_answer", "reason"),
    [
        (
            {"markets": []},
            {"markets": []},
            r"/markets: Gamma answered object with keys \['markets'\], expected a JSON list",
        ),
        ([], [{"slug": "x"}], r"/markets/keyset: Gamma answered list, expected an object"),
        ([], {"data": []}, r"/markets/keyset: Gamma answered object with keys \['data'\]"),
        ([], {"markets": [], "next_cursor": 5}, r"with a string next_cursor"),
    ],
)
@respx.mock
def test_a_wrong_shaped_200_is_a_failed_request_with_the_reason(
    slug_answer: object, keyset_answer: object, reason: str
) -> None:
    respx.get(f"{URL}/markets").mock(return_value=httpx.Response(200, json=slug_answer))
    respx.get(f"{URL}/markets/keyset").mock(return_value=httpx.Response(200, json=keyset_answer))
    with pytest.raises(DiscoveryError, match=reason):
        fetch()


@respx.mock
def test_429_waits_for_the_body_hint_and_the_header(slept: list[float]) -> None:
    respx.get(f"{URL}/markets").mock(
        side_effect=[
            httpx.Response(429, json={"error": "rate limited", "retry_after_seconds": 7}),
            httpx.Response(429, headers={"retry-after": "9"}),
            httpx.Response(200, json=[]),
        ]
    )
    respx.get(f"{URL}/markets/keyset").mock(return_value=httpx.Response(200, json={"markets": []}))
    result = fetch()
    assert slept == [7, 9]
    assert (result.failed_requests, result.failed_pages) == (2, 0)


@respx.mock
def test_request_timeout_applies_to_every_gamma_request() -> None:
    slugs = respx.get(f"{URL}/markets").mock(return_value=httpx.Response(200, json=[]))
    listing = respx.get(f"{URL}/markets/keyset").mock(return_value=httpx.Response(200, json={"markets": []}))
    fetch(request_timeout=2.5)
    for call in (slugs.calls[0], listing.calls[0]):
        assert call.request.extensions["timeout"] == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}
