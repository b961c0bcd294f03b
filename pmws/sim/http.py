"""A small HTTP/1.1 server on asyncio streams with h11: just enough for Gamma and CLOB REST."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qsl, urlsplit

import h11
import orjson

MAX_BODY = 4 * 1024 * 1024


@dataclass
class Request:
    """One parsed request."""

    method: str
    path: str
    params: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    """One response: status, body and extra headers."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json"


def json_response(status: int, obj: object, headers: list[tuple[str, str]] | None = None) -> Response:
    """A JSON body (orjson: compact, key order kept)."""
    return Response(status, orjson.dumps(obj), headers or [])


def edge_headers() -> list[tuple[str, str]]:
    """What Cloudflare adds in front of Polymarket, including a secret cookie clients must not archive."""
    ray = secrets.token_hex(8)
    cookie = (
        f"__cf_bm=secret{secrets.token_hex(16)}; path=/; expires={formatdate(usegmt=True)}; HttpOnly; Secure"
    )
    return [("server", "cloudflare"), ("cf-ray", f"{ray}-LHR"), ("set-cookie", cookie)]


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    """Serves `handler` on one port; `close()` drops every open keep-alive connection too."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.server: asyncio.Server | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        """Bind and start accepting."""
        self.server = await asyncio.start_server(self._accept, host, port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop accepting, cancel every connection task and wait for them."""
        if self.server is not None:
            self.server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        if self.server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 1.0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One TCP connection, tracked so close() can end it."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, h11.ProtocolError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.shield(writer.wait_closed())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Keep-alive loop: read a request, answer it, repeat until either side closes."""
        conn = h11.Connection(h11.SERVER)
        while True:
            try:
                request = await _read_request(conn, reader)
            except h11.RemoteProtocolError:
                await _send(conn, writer, json_response(400, {"error": "bad request"}))
                return
            if request is None:
                return
            response = await self.handler(request)
            await _send(conn, writer, response)
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()


async def _read_request(conn: h11.Connection, reader: asyncio.StreamReader) -> Request | None:
    """The next full request, or None when the client closed the connection."""
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
            continue
        if isinstance(event, h11.ConnectionClosed):
            return None
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY:
                raise h11.RemoteProtocolError("body too large")
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            target = urlsplit(head.target.decode("latin-1"))
            return Request(
                method=head.method.decode("ascii"),
                path=target.path,
                params=parse_qsl(target.query, keep_blank_values=True),
                headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers},
                body=bytes(body),
            )


async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, response: Response) -> None:
    """Write one response with the usual headers."""
    headers = [
        ("date", formatdate(usegmt=True)),
        ("content-type", response.content_type),
        ("content-length", str(len(response.body))),
        *edge_headers(),
        *response.headers,
    ]
    data = conn.send(h11.Response(status_code=response.status, headers=headers))
    data += conn.send(h11.Data(data=response.body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    writer.write(data)
    await writer.drain()
