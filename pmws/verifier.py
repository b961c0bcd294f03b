"""Book-hash verification off the receive path: the `BookTracker` in a worker process, fed in frame order.

The recorder hands every frame it verifies to `Verifier.observe_frame`, and token metadata, forgotten
tokens and REST comparisons to the other methods, in the order they happen. In worker mode they travel
in batches (`BATCH_ITEMS`, or `FLUSH_SECONDS` after the first) over one socket pair to
`python -m pmws.verifier`, which re-parses each payload and applies it to its `BookTracker` exactly as
the recorder would in-process: nothing is sampled or skipped, so the counters are the in-process ones.
They come back with the worker's reply to each batch (at most a batch behind); `sync()` waits for the
worker to catch up, so counters taken at a file's end or at shutdown are exact. A REST comparison is
answered after every frame received before it, as in-process. Divergences that later frames reveal (a
deferred REST comparison, tracker.py) come back with the replies and wait in `take_divergences()`.

In this process (the default) frames are applied in the same batches, on the event loop, so that the
tracker runs over many frames at once with warm caches instead of once per frame woken from idle (at a
steady 1,000 frames/s that cost three times as much per frame as at full speed, issue 14). Everything
that reads the books or the exact counters (`compare_rest`, `sync`, `held_tokens`, `close`, metadata
and forgotten tokens) applies the batch first; the counters `/metrics` reads lag by at most
`FLUSH_SECONDS`, as in worker mode.

A full socket blocks the sender: a worker that falls behind holds back the receive loop (and TCP the
server), it never grows memory. If the worker cannot start or dies, verification continues in this
process from where the last reply left the counters, books resyncing from the next `book` of each token
(`failed` says why); the archive never depends on the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import subprocess
import sys
import weakref
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import orjson

from pmws.book import summary_hash
from pmws.protocol import Classified, iter_events
from pmws.tracker import BookTracker, Divergence, HashCounters

BATCH_ITEMS = 512
FLUSH_SECONDS = 0.02


@dataclass
class Comparison:
    """A REST summary compared with the feed's book: the divergence (if any) and what coverage needs."""

    divergence: Divergence | None
    rest_hash: str
    feed_agrees: bool  # the REST hash is one the feed produced recently
    feed_hash: str | None  # the feed's latest hash for the token (None: no book)


@dataclass
class _State:
    counters: HashCounters = field(default_factory=HashCounters)
    rest_agree: int = 0
    rest_divergent: int = 0


class Verifier:
    """Book rebuilding and hash verification for one recorder, in a worker process or in this one."""

    def __init__(self, *, worker: bool) -> None:
        self._local: BookTracker | None = None
        self._frames: list[Any] = []  # parsed frames the local tracker has yet to apply (in order)
        self._conn: Connection | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._batch: list[Any] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._state = _State()
        self._divergences: list[Divergence] = []
        self._replies: dict[int, Any] = {}
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._held_at_close: set[str] = set()
        self._closed = False
        self._reaper: weakref.finalize[Any, Any] | None = None
        self.failed: str | None = None
        self._metadata: dict[str, tuple[str, bool]] = {}  # what the worker was told (worker mode)
        with contextlib.suppress(RuntimeError):  # no running loop: every frame is applied at once
            self._loop = asyncio.get_running_loop()
        if worker:
            try:
                self._start()
            except OSError as exc:
                self._fall_back(f"verifier worker did not start: {exc}")
        else:
            self._local = BookTracker()

    # --- what the recorder calls ---------------------------------------------------------------

    def observe_frame(self, classified: Classified) -> None:
        """Apply one parsed frame's events (in frame order)."""
        if self._local is not None:
            self._frames.append(classified.parsed)
            self._after_append()
        elif not self._closed:
            self._batch.append(classified.payload)
            self._after_append()

    def set_metadata(self, token_id: str, min_order_size: str, neg_risk: bool) -> None:
        if self._local is not None:
            self._apply_local()
            self._local.set_metadata(token_id, min_order_size, neg_risk)
        elif not self._closed:
            self._metadata[token_id] = (min_order_size, neg_risk)  # for a fallback tracker, if it comes to it
            self._batch.append(("meta", token_id, min_order_size, neg_risk))
            self._after_append()

    def forget(self, token_id: str) -> None:
        if self._local is not None:
            self._apply_local()
            self._local.forget(token_id)
        elif not self._closed:
            self._metadata.pop(token_id, None)
            self._batch.append(("forget", token_id))
            self._after_append()

    async def compare_rest(self, summaries: list[dict[str, Any]]) -> list[Comparison]:
        """Compare REST `/books` summaries with the books as of every frame received so far."""
        if self._local is not None:
            self._apply_local()
            return [_compare(self._local, s) for s in summaries]
        if self._closed:
            return []
        request = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[request] = future
        self._send_now(("compare", request, summaries))
        got = await future
        if got is None:  # the worker died first: the local tracker that took over answers
            return await self.compare_rest(summaries)
        return list(got)

    def take_divergences(self) -> list[Divergence]:
        """Divergences found since the last call (deferred REST comparisons the feed has now settled)."""
        found, self._divergences = self._divergences, []
        return found

    @property
    def counters(self) -> HashCounters:
        return self._local.counters if self._local is not None else self._state.counters

    @property
    def rest_agree(self) -> int:
        return self._local.rest_agree if self._local is not None else self._state.rest_agree

    @property
    def rest_divergent(self) -> int:
        return self._local.rest_divergent if self._local is not None else self._state.rest_divergent

    def sync(self) -> None:
        """Wait (blocking) until everything observed is applied: the counters are exact now."""
        if self._local is not None:
            self._apply_local()
        else:
            self._request(("sync", 0))

    def held_tokens(self) -> set[str]:
        """Tokens the tracker keeps state for (books or metadata): forgotten tokens must not stay."""
        if self._local is not None:
            self._apply_local()
            return set(self._local.books) | set(self._local.metadata)
        if self._closed:
            return set(self._held_at_close)
        held = self._request(("held", 0))
        return set(held) if held is not None else self.held_tokens()

    def close(self) -> None:
        """Apply what is queued, then stop the worker (counters and held tokens stay readable)."""
        if self._conn is None:
            self._apply_local()
            return
        held = self._request(("held", 0))  # after everything queued: the counters are exact too
        if self._conn is None:
            return  # it died meanwhile: the local tracker took over
        self._held_at_close = set(held or ())
        self._closed = True
        self._stop_worker()

    # --- worker plumbing -----------------------------------------------------------------------

    def _start(self) -> None:
        parent, child = socket.socketpair()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "pmws.verifier", str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            child.close()
        self._conn = Connection(parent.detach())
        # a Verifier dropped without close() (an error path) still ends its worker: EOF, then reaped
        self._reaper = weakref.finalize(self, _reap, self._conn, self._proc)
        if self._loop is not None:  # else replies are read on each send
            self._loop.add_reader(self._conn.fileno(), self._read_replies)

    def _after_append(self) -> None:
        pending = len(self._batch) + len(self._frames)
        if pending >= BATCH_ITEMS or (self._loop is None and self._local is not None):
            self._flush()
        elif self._flush_handle is None and self._loop is not None:
            self._flush_handle = self._loop.call_later(FLUSH_SECONDS, self._flush)

    def _apply_local(self) -> None:
        """Apply the parsed frames observed so far to the local tracker, in order."""
        local, frames = self._local, self._frames
        if local is None or not frames:
            return
        self._frames = []
        observe, divergences = local.observe, self._divergences
        for parsed in frames:
            for event in (parsed,) if type(parsed) is dict else iter_events(parsed):
                found = observe(event)
                if found:
                    divergences.extend(found)  # self._divergences, in place

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._local is not None:
            self._apply_local()
        elif self._batch and self._conn is not None:
            batch, self._batch = self._batch, []
            self._send(batch)

    def _send_now(self, op: tuple[Any, ...]) -> bool:
        """Queue `op` after what is batched and send it all; False when the worker is gone."""
        if self._conn is None:
            return False
        self._batch.append(op)
        self._flush()
        return self._conn is not None

    def _send(self, batch: list[Any]) -> None:
        conn = self._conn
        assert conn is not None
        try:
            self._read_replies()  # never let replies pile up while we block on a full socket
            conn.send(batch)
        except (OSError, EOFError, ValueError) as exc:
            self._fall_back(f"verifier worker failed: {exc}", unsent=batch)

    def _request(self, op: tuple[str, int]) -> Any:
        request = next(self._ids)
        if not self._send_now((op[0], request)):
            return None
        conn = self._conn
        while request not in self._replies and conn is self._conn and conn is not None:
            try:
                self._handle(conn.recv())
            except Exception as exc:  # noqa: BLE001 - a worker we cannot read is a failed worker
                self._fall_back(f"verifier worker failed: {exc!r}")
                return None
        return self._replies.pop(request, None)

    def _read_replies(self) -> None:
        conn = self._conn
        try:
            while conn is not None and conn is self._conn and conn.poll():
                self._handle(conn.recv())
        except Exception as exc:  # noqa: BLE001 - a worker we cannot read is a failed worker
            self._fall_back(f"verifier worker failed: {exc!r}")

    def _handle(self, message: tuple[Any, ...]) -> None:
        counters, rest_agree, rest_divergent, divergences, replies = message
        self._state = _State(HashCounters(**counters), rest_agree, rest_divergent)
        self._divergences += divergences
        for request, value in replies:
            future = self._waiting.pop(request, None)
            if future is not None:
                if not future.done():
                    future.set_result(value)
            else:
                self._replies[request] = value

    def _fall_back(self, reason: str, unsent: list[Any] | None = None) -> None:
        """Verify in this process from now on, carrying the counters over; record why."""
        self.failed = self.failed or reason
        self._stop_worker()
        tracker = BookTracker()
        for token, (mos, neg_risk) in self._metadata.items():  # the book hash needs them (§5)
            tracker.set_metadata(token, mos, neg_risk)
        tracker.counters = self._state.counters
        tracker.rest_agree, tracker.rest_divergent = self._state.rest_agree, self._state.rest_divergent
        self._local = tracker
        for item in (unsent or []) + self._batch:
            if isinstance(item, bytes):
                with contextlib.suppress(orjson.JSONDecodeError):
                    for event in iter_events(orjson.loads(item)):
                        self._divergences += tracker.observe(event)
            elif item[0] == "meta":
                tracker.set_metadata(*item[1:])
            elif item[0] == "forget":
                tracker.forget(item[1])
        self._batch = []
        for future in self._waiting.values():
            if not future.done():
                future.set_result(None)  # compare_rest asks the local tracker instead
        self._waiting.clear()

    def _stop_worker(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        conn, self._conn = self._conn, None
        if conn is not None and self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(conn.fileno())
        self._proc = None
        if self._reaper is not None:
            self._reaper()


def _reap(conn: Connection, proc: subprocess.Popen[bytes]) -> None:
    """Close the worker's socket (it reads EOF and exits) and wait for it."""
    with contextlib.suppress(OSError):
        conn.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _compare(tracker: BookTracker, summary: dict[str, Any]) -> Comparison:
    divergence = tracker.compare_rest(summary)
    book = tracker.books.get(str(summary.get("asset_id", "")))
    rest_hash = str(summary.get("hash") or summary_hash(summary))
    return Comparison(
        divergence,
        rest_hash,
        book is not None and rest_hash in book.recent_hashes,
        book.recent_hashes.latest if book is not None else None,
    )


def serve(conn: Connection) -> None:
    """The worker: apply each batch in order, answer with the counters, divergences and replies."""
    tracker = BookTracker()
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    while True:
        try:
            batch = conn.recv()
        except (EOFError, OSError):
            return
        divergences: list[Divergence] = []
        replies: list[tuple[int, Any]] = []
        for item in batch:
            if type(item) is bytes:
                try:
                    parsed = loads(item)
                except decode_error:
                    continue
                for event in (parsed,) if type(parsed) is dict else iter_events(parsed):
                    divergences += tracker.observe(event)
                continue
            kind = item[0]
            if kind == "meta":
                tracker.set_metadata(item[1], item[2], item[3])
            elif kind == "forget":
                tracker.forget(item[1])
            elif kind == "compare":
                replies.append((item[1], [_compare(tracker, s) for s in item[2]]))
            elif kind == "sync":
                replies.append((item[1], None))
            elif kind == "held":
                replies.append((item[1], sorted(set(tracker.books) | set(tracker.metadata))))
        state = (tracker.counters.to_json(), tracker.rest_agree, tracker.rest_divergent, divergences, replies)
        try:
            conn.send(state)
        except OSError:
            return


if __name__ == "__main__":
    from pmws.verifier import serve as serve_imported  # replies pickle as pmws.verifier.*, not __main__.*

    serve_imported(Connection(int(sys.argv[1])))
    os._exit(0)
