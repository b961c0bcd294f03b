"""A raw-socket websocket sender that is never the bottleneck: real captured frames, pre-encoded, in bulk.

    python benchmarks/_blaster.py [--tls-cert C --tls-key K]   # prints its ws:// or wss:// URL

Each connection gets the minimal RFC 6455 handshake, then the same cycle of real Polymarket frames over and
over: the captured `price_change` burst of tests/fixtures (an initial `book`, 48 `price_change`, a post-trade
`book`) and the `last_trade_price` that explains the burst's post-trade hashes (PROTOCOL.md §5.3), 52 frames
of 639 B on average. Every book hash in the cycle verifies, cycle after cycle (the entries of the burst's
second asset, which has no book, are unverifiable). The cycle is framed once into a ~1 MB buffer and written
with `sendall`, so sending costs a few syscalls per thousand frames: a receiver that keeps up with it is
measured, not the sender (the simulator, in Python, tops out well below a bare receive loop).

What the client sends (subscribe, PING) is read and discarded.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

FIXTURE = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "fixtures"
    / "ws_price_change_burst_captured_nautilus.json"
)
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CHUNK_BYTES = 1 << 20


def cycle_events() -> list[dict[str, Any]]:
    """The burst and the trade that explains its post-trade hashes: every book hash verifies."""
    messages: list[dict[str, Any]] = json.loads(FIXTURE.read_text())
    book = messages[-1]
    trade = {
        "market": book["market"],
        "asset_id": book["asset_id"],
        "price": "0.301",
        "side": "BUY",
        "size": "1",
        "fee_rate_bps": "0",
        "timestamp": book["timestamp"],
        "event_type": "last_trade_price",
    }
    return [*messages, trade]


def cycle_frames() -> list[bytes]:
    return [json.dumps(e, separators=(",", ":")).encode() for e in cycle_events()]


def cycle_assets() -> list[tuple[str, str]]:
    """(market, asset_id) of every asset the cycle's frames concern, in first-seen order."""
    seen: dict[str, str] = {}
    for event in cycle_events():
        for change in event.get("price_changes") or [event]:
            if "asset_id" in change:
                seen.setdefault(change["asset_id"], event["market"])
    return [(market, asset) for asset, market in seen.items()]


def frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented server text frame."""
    n = len(payload)
    if n < 126:
        head = bytes([0x81, n])
    elif n < 1 << 16:
        head = bytes([0x81, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x81, 127]) + n.to_bytes(8, "big")
    return head + payload


def chunk() -> bytes:
    one = b"".join(frame(f) for f in cycle_frames())
    return one * max(1, CHUNK_BYTES // len(one))


def handshake(conn: socket.socket) -> bool:
    request = b""
    while b"\r\n\r\n" not in request:
        got = conn.recv(4096)
        if not got:
            return False
        request += got
    key = next(
        (
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        ),
        b"",
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    return True


def drain(conn: socket.socket) -> None:
    """Read and drop what the client sends, so its subscribe and PINGs never fill a buffer."""
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


def serve(conn: socket.socket, data: bytes) -> None:
    try:
        if not handshake(conn):
            return
        threading.Thread(target=drain, args=(conn,), daemon=True).start()
        while True:
            conn.sendall(data)
    except OSError:
        pass
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    data = chunk()
    listener = socket.create_server(("127.0.0.1", 0))
    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    scheme = "wss" if context else "ws"
    print(f"{scheme}://127.0.0.1:{listener.getsockname()[1]}/ws/market", flush=True)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            try:
                conn = context.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                conn.close()
                continue
        threading.Thread(target=serve, args=(conn, data), daemon=True).start()


class Blaster:
    """The blaster in its own process (a core of its own, no GIL shared with what is measured)."""

    def __init__(self, *, tls: tuple[Path, Path] | None = None):
        extra = ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else []
        self.proc = subprocess.Popen([sys.executable, __file__, *extra], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.ws_url = self.proc.stdout.readline().strip()
        if not self.ws_url:
            raise RuntimeError("blaster did not start")

    def __enter__(self) -> Blaster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


if __name__ == "__main__":
    main()
