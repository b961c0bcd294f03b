"""Gaps from the recorder's own lifecycle lines, as explicit records with start, end and cause. Pure.

`pmws run` writes what happened to each connection into the stream (feed.py, run.py): `stale_feed` (with
`seconds_without_market_data`), `pong_timeout` (with `seconds_without_frames`), `disconnect` (with its
`reason`), `subscribe` (`initial` on a new connection), `token_blind` (coverage.py: REST moved on while the
feed sent nothing for a token) and `startup_recovery` (files salvaged after a kill). A connection slot of a
shard is covered while any session of that shard (a replica counts) has it subscribed; from the moment no
session has, to the next initial subscribe, is a gap with the cause of the last loss. A blind token is a gap
from its last message to the next frame that concerns it. A salvaged file's session stopped at its last
record: a gap to the next start. Gaps still open at the end of the read end at the last record (`"open":
true`), except connections the recorder stopped on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pmws.read.records import Record, gap_record, gap_row
from pmws.rotation import session_of_name

STOPPED = "stopped"
_NONE: list[Record] = []  # shared, never appended to


@dataclass
class _Slot:
    up: set[str] = field(default_factory=set)  # sessions with this slot subscribed
    down_since: int | None = None
    cause: str = ""
    session: str | None = None


@dataclass
class GapFinder:
    """Feed records in receive order; `observe` returns the gap records that the record closes."""

    slots: dict[tuple[Any, Any], _Slot] = field(default_factory=dict)
    blind: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # token → (since, session)
    last_seen: dict[str, int] = field(default_factory=dict)  # session → last record time
    last_ns: int = 0

    def observe(self, record: Record) -> list[Record]:
        row = record.row
        now = record.received_ns
        if now > self.last_ns:
            self.last_ns = now
        session = row.get("session_id")
        if isinstance(session, str):
            self.last_seen[session] = now
        if record.record_type == "ws_frame":
            return list(self._frame_for_blind(record)) if self.blind else _NONE
        if record.record_type != "lifecycle":
            return _NONE
        return list(self._lifecycle(record, row, session, now))

    def _lifecycle(self, record: Record, row: dict[str, Any], session: Any, now: int) -> Iterator[Record]:
        event = row.get("event")
        key = (row.get("shard"), row.get("slot"))
        if event == "subscribe" and row.get("initial") and isinstance(session, str):
            slot = self.slots.setdefault(key, _Slot())
            if not slot.up and slot.down_since is not None:
                yield self._gap(slot.down_since, now, slot.cause, slot.session, record, row)
            slot.up.add(session)
            slot.down_since = None
        elif event in ("stale_feed", "pong_timeout", "disconnect") and isinstance(session, str):
            self._lost(key, session, now, row)
        elif event == "token_blind" and isinstance(row.get("token_id"), str):
            age = row.get("last_message_age_seconds")
            since = now - int(age * 1e9) if isinstance(age, int | float) else now
            self.blind.setdefault(row["token_id"], (since, session if isinstance(session, str) else None))
        elif event == "startup_recovery":
            yield from self._salvaged(row, record)

    def _lost(self, key: tuple[Any, Any], session: str, now: int, row: dict[str, Any]) -> None:
        slot = self.slots.get(key)
        if slot is None:  # subscribed before the first record read (`--start`): it was up until now
            slot = self.slots[key] = _Slot(up={session})
        if session not in slot.up:
            return  # already lost (stale_feed comes before its disconnect): keep the first cause
        slot.up.discard(session)
        if slot.up:
            return  # a replica still covers this slot
        event = row.get("event")
        seconds = row.get("seconds_without_market_data", row.get("seconds_without_frames"))
        start = now - int(seconds * 1e9) if isinstance(seconds, int | float) else now
        reason = row.get("reason") if event == "disconnect" else None
        slot.down_since, slot.session = start, session
        slot.cause = f"disconnect: {reason}" if reason else str(event)

    def _salvaged(self, row: dict[str, Any], record: Record) -> Iterator[Record]:
        """A killed session stopped at its last record: its slots went down then, without a disconnect."""
        files = row.get("salvaged") or []
        killed = {s for name in files if isinstance(name, str) and (s := session_of_name(name))}
        for session in killed:
            last = self.last_seen.get(session)
            for slot in self.slots.values():
                if session in slot.up:
                    slot.up.discard(session)
                    if not slot.up and last is not None:
                        slot.down_since, slot.session = last, session
                        slot.cause = "recorder killed (file salvaged at the next start)"
        return iter(())

    def _frame_for_blind(self, record: Record) -> Iterator[Record]:
        tracked = record.row.get("tokens_tracked")
        if not isinstance(tracked, list):
            return
        for token in tracked:
            token_id = token.get("token_id") if isinstance(token, dict) else None
            if token_id in self.blind:
                since, session = self.blind.pop(token_id)
                yield self._gap(
                    since, record.received_ns, "token_blind", session, record, {"token_id": token_id}
                )

    def finish(self) -> Iterator[Record]:
        """Gaps still open at the end of the read (not the ones a recorder stop left)."""
        for (shard, slot_id), slot in self.slots.items():
            if not slot.up and slot.down_since is not None and not slot.cause.endswith(STOPPED):
                row = gap_row(
                    slot.down_since,
                    max(self.last_ns, slot.down_since),
                    slot.cause,
                    session_id=slot.session,
                    shard=shard,
                    slot=slot_id,
                    open=True,
                )
                yield gap_record(row, "")
        for token_id, (since, session) in self.blind.items():
            row = gap_row(
                since, max(self.last_ns, since), "token_blind", session_id=session, token_id=token_id
            )
            row["open"] = True
            yield gap_record(row, "")

    @staticmethod
    def _gap(
        start: int, end: int, cause: str, session: str | None, record: Record, row: dict[str, Any]
    ) -> Record:
        details: dict[str, Any] = {}
        for key in ("shard", "slot", "token_id"):
            if key in row:
                details[key] = row[key]
        return gap_record(gap_row(min(start, end), end, cause, session_id=session, **details), record.source)
