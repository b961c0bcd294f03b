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

import heapq
from collections.abc import Callable, Iterator

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
        following = next(iterator, None)
        if following is None:
            heapq.heappop(heap)
        else:
            counter += 1
            heapq.heapreplace(heap, (following.received_ns, index, counter, following, iterator))


class Deduplicator:
    """Replica merge: a frame seen by two sessions of one shard within `tolerance_ns` comes out once."""

    def __init__(self, tolerance_ns: int, *, replicas: bool = True) -> None:
        self.tolerance_ns = tolerance_ns
        self.replicas = replicas  # False: only put records back in receive order
        self.duplicates = 0
        self._held: list[tuple[int, int, Record]] = []  # a heap: receive order
        self._count = 0
        self._by_hash: dict[str, list[Record]] = {}

    def feed(self, record: Record) -> Iterator[Record]:
        """Records older than the tolerance window, in order; `record` is held (or merged into one held)."""
        yield from self._release(record.received_ns - self.tolerance_ns)
        row = record.row
        if record.record_type == "ws_frame":
            session = row.get("session_id")
            record.seen_by = (session,) if isinstance(session, str) else ()
        if self.replicas and record.record_type == "ws_frame" and row.get("classified_event_types"):
            digest = row.get("payload_sha256")
            if isinstance(digest, str):
                held = self._by_hash.get(digest)
                if held is not None:
                    for earlier in held:
                        if (
                            earlier.row.get("shard") == row.get("shard")
                            and session not in earlier.seen_by
                            and record.received_ns - earlier.received_ns <= self.tolerance_ns
                        ):
                            earlier.seen_by += record.seen_by
                            self.duplicates += 1
                            return
                    held.append(record)
                else:
                    self._by_hash[digest] = [record]
        self._count += 1
        heapq.heappush(self._held, (record.received_ns, self._count, record))

    def flush(self) -> Iterator[Record]:
        yield from self._release(None)

    def _release(self, before_ns: int | None) -> Iterator[Record]:
        held = self._held
        while held and (before_ns is None or held[0][0] < before_ns):
            record = heapq.heappop(held)[2]
            if not self.replicas:
                yield record
                continue
            digest = record.row.get("payload_sha256") if record.record_type == "ws_frame" else None
            if isinstance(digest, str):
                same = self._by_hash.get(digest)
                if same is not None:
                    if same and same[0] is record:
                        same.pop(0)
                    else:
                        same[:] = [r for r in same if r is not record]
                    if not same:
                        del self._by_hash[digest]
            yield record
