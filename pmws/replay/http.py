"""Gamma and CLOB `/books` answered from the archive (PROTOCOL.md §4, §6.1), for `pmws.sim.http.HttpServer`.

Gamma lists every archived market (`Catalog.gamma_markets`), filtered by `slug` only: `closed`, the end-date
bounds and the zombie filter are the client's to apply, so nothing archived is hidden. With `--shift-to`,
the markets' times move so that the replay's first record falls at that time (old windows look live).
`/books` and `/book` answer the books as rebuilt at the current replay time; a token with no book yet is
left out (404 for `/book`), as live for an unknown token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pmws.channel import parse_books_request
from pmws.replay.catalog import Catalog, book_summary
from pmws.sim.http import Request, Response, json_response
from pmws.tracker import BookTracker

MAX_PAGE = 100  # /markets/keyset serves at most 100 markets a page (§6.1)


class ReplayApi:
    """Routes `/gamma/...` and `/clob/...` like the simulator, from the catalog and the rebuilt books."""

    def __init__(
        self,
        catalog: Catalog,
        tracker: BookTracker,
        *,
        shift_ns: Callable[[], int] = lambda: 0,
        shift_known: asyncio.Event | None = None,
    ) -> None:
        self.catalog = catalog
        self.tracker = tracker
        self.shift_ns = shift_ns  # how far Gamma's times move (`--shift-to`), known once `shift_known` is set
        self.shift_known = shift_known

    async def __call__(self, request: Request) -> Response:
        if self.shift_known is not None and request.path.startswith("/gamma/"):
            await self.shift_known.wait()  # the shift is anchored on the first record the replay plays
        routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", "/gamma/markets"): self.markets,
            ("GET", "/gamma/markets/keyset"): self.markets_keyset,
            ("POST", "/clob/books"): self.books,
            ("GET", "/clob/book"): self.book,
        }
        route = routes.get((request.method, request.path.rstrip("/")))
        if route is not None:
            return route(request)
        prefix = "/gamma/markets/slug/"
        if request.method == "GET" and request.path.startswith(prefix):
            found = self.catalog.gamma_markets(slugs={request.path[len(prefix) :]}, shift_ns=self.shift_ns())
            return json_response(200, found[0]) if found else json_response(404, {"error": "not found"})
        return json_response(404, {"error": "not found"})

    def _listing(self, request: Request) -> list[dict[str, Any]]:
        slugs = {v for k, v in request.params if k == "slug"}
        return self.catalog.gamma_markets(slugs=slugs or None, shift_ns=self.shift_ns())

    def markets(self, request: Request) -> Response:
        """GET /markets: the archived markets (`slug=` filters), at most `limit`."""
        return json_response(200, self._listing(request)[: _int(request, "limit", 500)])

    def markets_keyset(self, request: Request) -> Response:
        """GET /markets/keyset: pages of `limit` ≤ 100; `next_cursor` (an offset here) until the last."""
        listing = self._listing(request)
        offset = _int(request, "after_cursor", 0)
        limit = max(1, min(_int(request, "limit", MAX_PAGE), MAX_PAGE))
        page: dict[str, Any] = {"markets": listing[offset : offset + limit]}
        if offset + limit < len(listing):
            page["next_cursor"] = str(offset + limit)
        return json_response(200, page)

    def books(self, request: Request) -> Response:
        """POST /books `[{"token_id": …}]` → the rebuilt books of the tokens that have one, in order."""
        try:
            token_ids = parse_books_request(request.body)
        except ValueError as exc:
            return json_response(400, {"error": str(exc)})
        books = [self.tracker.books.get(token_id) for token_id in token_ids]
        return json_response(200, [book_summary(b) for b in books if b is not None and b.synced])

    def book(self, request: Request) -> Response:
        """GET /book?token_id= → one rebuilt book, 404 when there is none (§4.2)."""
        token = next((v for k, v in request.params if k == "token_id"), "")
        book = self.tracker.books.get(token)
        if book is None or not book.synced:
            return json_response(404, {"error": "No orderbook exists for the requested token id"})
        return json_response(200, book_summary(book))


def _int(request: Request, name: str, default: int) -> int:
    value = next((v for k, v in request.params if k == name), None)
    try:
        return max(0, int(value)) if value is not None else default
    except ValueError:
        return default
