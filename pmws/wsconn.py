"""What pmws needs of a websockets connection beyond its API: an idle probe for batched reads, why it
closed (and the bytes of an undecodable frame), and an abort that does not wait for the peer."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import termios
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode


def idle_probe(ws: ClientConnection) -> Callable[[], bool] | None:
    """A check that nothing is waiting to be processed: no frame queued in websockets, no byte in the
    kernel's socket buffer. None where that cannot be seen (then reads are never paused)."""
    frames = getattr(getattr(ws, "recv_messages", None), "frames", None)
    sock = ws.transport.get_extra_info("socket") if ws.transport is not None else None
    if frames is None or sock is None or not hasattr(frames, "__len__"):
        return None
    fd = sock.fileno()
    buffer = bytearray(4)

    def idle() -> bool:
        if len(frames):
            return False
        try:
            fcntl.ioctl(fd, termios.FIONREAD, buffer)
        except OSError:
            return False
        return buffer == b"\0\0\0\0"

    return idle


async def batch_pause(ws: ClientConnection, seconds: float) -> None:
    """Stop reading for `seconds` so that frames arriving meanwhile are read and processed together."""
    transport = ws.transport
    if not transport.is_reading():  # websockets' own flow control holds it: leave that alone
        return
    transport.pause_reading()
    try:
        await asyncio.sleep(seconds)
    finally:
        if not transport.is_closing():
            transport.resume_reading()


def closed_reason(exc: ConnectionClosed) -> str:
    """Who closed the connection and why: the server, pmws (a frame it could not accept), or nobody."""
    sent, rcvd = exc.sent, exc.rcvd
    if sent is not None and (rcvd is None or exc.rcvd_then_sent is False):
        # pmws failed the connection: websockets closes with 1007 on a text frame that is not UTF-8
        what = " (a text frame that is not valid UTF-8)" if sent.code == CloseCode.INVALID_DATA else ""
        return f"closed by pmws: code {sent.code}{what} {sent.reason!r}"
    if rcvd is None:
        return "connection_lost (no close frame)"
    return f"closed by server: code {rcvd.code} {rcvd.reason!r}".rstrip()


def undecodable_frame(exc: ConnectionClosed) -> dict[str, Any]:
    """The exact bytes of a text frame that failed UTF-8 decoding (it has no envelope), for the record."""
    cause = exc.__cause__
    if not isinstance(cause, UnicodeDecodeError) or not isinstance(cause.object, bytes):
        return {}
    payload = cause.object
    return {
        "invalid_text_frame_bytes": len(payload),
        "invalid_text_frame_sha256": hashlib.sha256(payload).hexdigest(),
        "invalid_text_frame_base64": base64.b64encode(payload).decode("ascii"),
    }


async def abort(ws: ClientConnection) -> None:
    """Drop the TCP connection now (a stale peer may never answer a close frame)."""
    transport = ws.transport
    if transport is not None and not transport.is_closing():
        transport.abort()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.wait_closed(), timeout=1.0)
