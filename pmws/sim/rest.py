"""Routes: Gamma under /gamma, CLOB order books under /clob (PROTOCOL.md §4, §6)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pmws.channel import parse_books_request
from pmws.sim import gamma
from pmws.sim.catalog import Catalog, Listed
from pmws.sim.config import Faults
from pmws.sim.engine import Engine
from pmws.sim.http import Request, Response, json_response

NO_BOOK = {"error": "No orderbook exists for the requested token id"}


class RestApi:
    """Answers every HTTP request from the shared catalog and books."""

    def __init__(
        self, catalog: Catalog, engine: Engine, faults: Callable[[], Faults], clock: Callable[[], float]
    ) -> None:
        self.catalog = catalog
        self.engine = engine
        self.faults = faults
        self.clock = clock
        self._books_requests = 0  # /books and /book requests answered so far (books_fail_every)

    async def __call__(self, request: Request) -> Response:
        """Route one request."""
        routes: dict[tuple[str, str], Callable[[Request], Response | Awaitable[Response]]] = {
            ("GET", "/gamma/markets"): self.markets,
            ("GET", "/gamma/events"): self.events,
            ("GET", "/gamma/markets/keyset"): self.markets_keyset,
            ("GET", "/gamma/events/keyset"): self.events_keyset,
            ("POST", "/clob/books"): self.books,
            ("GET", "/clob/book"): self.book,
        }
        route = routes.get((request.method, request.path.rstrip("/")))
        if route is None:
            return self._by_slug(request) or json_response(404, {"error": "not found"})
        result = route(request)
        return result if isinstance(result, Response) else await result

    # --- Gamma --------------------------------------------------------------------------------------

    def market_objects(self, items: list[Listed], *, nested_event: bool = True) -> list[dict[str, Any]]:
        """Gamma objects for listed markets, priced from the live books."""
        return [gamma.market_object(item, self._quote(item), nested_event=nested_event) for item in items]

    def _quote(self, item: Listed) -> gamma.Quote:
        """Top of book and last trade of the first outcome, for Gamma's price fields."""
        token = self.engine.market_book(item.spec).tokens[0]
        bid, ask = token.best_bid(), token.best_ask()
        ltp = float(token.last_trade_price) if token.last_trade_price else None
        return ((bid or 0) / 1000, (ask or 1000) / 1000, ltp, token.tick_mills / 1000)

    def markets(self, request: Request) -> Response:
        """GET /markets: filter, order, page by offset; deprecated, 422 past offset 2,000 (§6.1)."""
        try:
            chosen = gamma.select(self.catalog.listing(self.clock()), request.params, "markets")
        except gamma.QueryError as exc:
            return json_response(422, {"error": str(exc)}, list(gamma.DEPRECATION_HEADERS))
        return json_response(200, self.market_objects(chosen), list(gamma.DEPRECATION_HEADERS))

    def events(self, request: Request) -> Response:
        """GET /events: one event per market, each with its `markets` list; deprecated like /markets."""
        try:
            chosen = gamma.select(self.catalog.listing(self.clock()), request.params, "events")
        except gamma.QueryError as exc:
            return json_response(422, {"error": str(exc)}, list(gamma.DEPRECATION_HEADERS))
        return json_response(200, [self._event(item) for item in chosen], list(gamma.DEPRECATION_HEADERS))

    def markets_keyset(self, request: Request) -> Response:
        """GET /markets/keyset → `{"markets": [...], "next_cursor": "..."}`, no cursor on the last page."""
        try:
            listing = self.catalog.listing(self.clock())
            chosen, cursor = gamma.select_keyset(listing, request.params, "markets")
        except gamma.QueryError as exc:
            return json_response(422, {"error": str(exc)})
        if self.faults().gamma_wrong_shape:
            return json_response(200, self.market_objects(chosen))
        return json_response(200, _keyset_page("markets", self.market_objects(chosen), cursor))

    def events_keyset(self, request: Request) -> Response:
        """GET /events/keyset → `{"events": [...], "next_cursor": "..."}`."""
        try:
            listing = self.catalog.listing(self.clock())
            chosen, cursor = gamma.select_keyset(listing, request.params, "events")
        except gamma.QueryError as exc:
            return json_response(422, {"error": str(exc)})
        return json_response(200, _keyset_page("events", [self._event(i) for i in chosen], cursor))

    def _event(self, item: Listed) -> dict[str, Any]:
        """One /events object with its market embedded."""
        market = self.market_objects([item], nested_event=False)[0]
        return gamma.event_object(
            item, liquidity=market["liquidityNum"], volume=market["volumeNum"], markets=[market]
        )

    def _by_slug(self, request: Request) -> Response | None:
        """GET /markets/slug/{slug} and /events/slug/{slug} (§6.1)."""
        for prefix, build in (("/gamma/markets/slug/", self.market_objects), ("/gamma/events/slug/", None)):
            if request.method == "GET" and request.path.startswith(prefix):
                slug = request.path[len(prefix) :]
                found = [i for i in self.catalog.listing(self.clock()) if i.spec.slug == slug]
                if not found:
                    return json_response(404, {"error": "not found"})
                obj = build(found)[0] if build else self._event(found[0])
                return json_response(200, obj)
        return None

    # --- CLOB ---------------------------------------------------------------------------------------

    async def _fault(self) -> Response | None:
        """Delay and/or fail /books and /book as the fault switches say."""
        faults = self.faults()
        if faults.books_delay_seconds > 0:
            await asyncio.sleep(faults.books_delay_seconds)
        self._books_requests += 1
        if faults.books_fail_every and self._books_requests % faults.books_fail_every == 0:
            return json_response(503, {"error": "simulated failure"}, [])
        if faults.books_status is None:
            return None
        headers = []
        body: dict[str, Any] = {"error": "simulated failure"}
        if faults.books_status == 429 and faults.books_retry_after is not None:
            headers.append(("retry-after", f"{faults.books_retry_after:g}"))
        if faults.books_status == 429 and faults.books_retry_after_body is not None:
            body["retry_after_seconds"] = faults.books_retry_after_body
        return json_response(faults.books_status, body, headers)

    async def books(self, request: Request) -> Response:
        """POST /books `[{"token_id": …}]` → summaries of the known tokens, in request order (§4.1)."""
        fault = await self._fault()
        if fault is not None:
            return fault
        try:
            token_ids = parse_books_request(request.body)
        except ValueError as exc:
            return json_response(400, {"error": str(exc)})
        out = []
        for token_id in token_ids:
            book = self.engine.token_book(token_id)
            if book is not None:
                out.append(book.summary())
        return json_response(200, out)

    async def book(self, request: Request) -> Response:
        """GET /book?token_id= → one summary, 404 for an unknown token (§4.2)."""
        fault = await self._fault()
        if fault is not None:
            return fault
        token = next((v for k, v in request.params if k == "token_id"), "")
        if not token:
            return json_response(400, {"error": "Invalid token id"})
        book = self.engine.token_book(token)
        if book is None:
            return json_response(404, NO_BOOK)
        return json_response(200, book.summary())


def _keyset_page(kind: str, objects: list[dict[str, Any]], cursor: str | None) -> dict[str, Any]:
    """A keyset page body; `next_cursor` is absent on the last page (§6.1, [S27])."""
    page: dict[str, Any] = {kind: objects}
    if cursor is not None:
        page["next_cursor"] = cursor
    return page
