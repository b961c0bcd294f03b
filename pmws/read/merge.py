"""Receive order across files and sessions, and replicas of one shard merged into one stream.

`merge_chains` is a k-way merge (a heap of per-chain iterators, like `heapq.merge`) that opens a chain only
when the merge reaches its first period: memory depends on how many sessions overlap in time, not on how
many files the archive holds. `Deduplicator` holds records for `tolerance_ns` so that the same frame from
two replicas of a shard (same `payload_sha256`, receive times within the tolerance) comes out once, with
both sessions in `seen_by`; a frame only one replica received keeps that one session. Holding them also
puts lines a file wrote slightly out of receive order back in order (a file's first lifecycle lines are
stamped when it opens, just after the frame that opened it).
"""

from __future__ import annotations

import bisect
import heapq
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from pmws.read.records import Record
from pmws.read.sources import ArchiveFile

ChainOpener = Callable[[list[ArchiveFile]], Iterator[Record]]


def merge_chains(chains: list[list[ArchiveFile]], open_chain: ChainOpener) -> Iterator[Record]:
    """Records of every chain in receive order (ties: chain order, then file order)."""
    waiting = sorted(
        ((chain[0].period_start_ns or 0, index, chain) for index, chain in enumerate(chains) if chain),
        key=lambda item: (item[0], item[1]),
    )
    heap: list[tuple[int, int, int, Record, Iterator[Record]]] = []
    counter = 0

    def activate(index: int, chain: list[ArchiveFile]) -> None:
        nonlocal counter
        iterator = open_chain(chain)
        for record in iterator:
            counter += 1
            heapq.heappush(heap, (record.received_ns, index, counter, record, iterator))
            return

    position = 0
    while position < len(waiting) or heap:
        # A chain cannot hold records from before its first period: open it only when the merge gets there.
        while position < len(waiting) and (not heap or waiting[position][0] <= heap[0][0]):
            _, index, chain = waiting[position]
            position += 1
            activate(index, chain)
        if not heap:
            continue
        _, index, _, record, iterator = heap[0]
        yield record
        # Records strictly before every other chain's next one (and the next chain to open) need no heap:
        # most runs of one chain come out here, one comparison each.
        limit = min((entry[0] for entry in heap[1:3]), default=_NEVER)
        if position < len(waiting):
            limit = min(limit, waiting[position][0])
        for following in iterator:
            if following.received_ns < limit:
                yield following
                continue
            counter += 1
            heapq.heapreplace(heap, (following.received_ns, index, counter, following, iterator))
            break
        else:
            heapq.heappop(heap)


_NEVER = 1 << 127


class Deduplicator:
    """Replica merge: a frame seen by two sessions of one shard within `tolerance_ns` comes out once."""

    def __init__(self, tolerance_ns: int, *, replicas: bool = True, max_held: int | None = None) -> None:
        self.tolerance_ns = tolerance_ns
        self.replicas = replicas  # False: only put records back in receive order
        self.max_held = max_held  # and hold at most this many (None: all those inside the window)
        self.duplicates = 0
        self._held: deque[Record] = deque()  # receive order (stable: equal times in the order fed)
        self._by_hash: dict[str, list[Record]] = {}

    def feed(self, record: Record) -> list[Record]:
        """Records older than the tolerance window, in order; `record` is held (or merged into one held)."""
        ns = record.received_ns
        ready = self._release(ns - self.tolerance_ns) if self._held else []
        if self.max_held is not None and len(self._held) >= self.max_held:
            ready += self._release(self._held[0].received_ns + 1)
        if record.record_type == "ws_frame":
            row = record.row
            session = row.get("session_id")
            record.seen_by = (session,) if isinstance(session, str) else ()
            if self.replicas and row.get("classified_event_types") and self._merged(record, session):
                return ready
        held = self._held
        if not held or held[-1].received_ns <= ns:
            held.append(record)
        else:  # a line written a little out of receive order: rare
            held.insert(bisect.bisect_right(held, ns, key=_received_ns), record)
        return ready

    def _merged(self, record: Record, session: Any) -> bool:
        """Merge `record` into a held copy another replica recorded (True), or index it by its hash."""
        row = record.row
        digest = row.get("payload_sha256")
        if not isinstance(digest, str):
            return False
        held = self._by_hash.get(digest)
        if held is None:
            self._by_hash[digest] = [record]
            return False
        for earlier in held:
            if (
                earlier.row.get("shard") == row.get("shard")
                and session not in earlier.seen_by
                and record.received_ns - earlier.received_ns <= self.tolerance_ns
            ):
                earlier.seen_by += record.seen_by
                self.duplicates += 1
                return True
        held.append(record)
        return False

    def flush(self) -> list[Record]:
        return self._release(None)

    def _release(self, before_ns: int | None) -> list[Record]:
        held = self._held
        ready: list[Record] = []
        while held and (before_ns is None or held[0].received_ns < before_ns):
            record = held.popleft()
            ready.append(record)
            if not self.replicas or record.record_type != "ws_frame":
                continue
            digest = record.row.get("payload_sha256")
            same = self._by_hash.get(digest) if isinstance(digest, str) else None
            if same is not None:
                if same[0] is record:
                    same.pop(0)
                else:
                    same[:] = [r for r in same if r is not record]
                if not same:
                    del self._by_hash[digest]  # type: ignore[arg-type]
        return ready


def _received_ns(record: Record) -> int:
    return record.received_ns
