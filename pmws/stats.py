"""Counts of what the feed delivered, per event type and per token. Pure: fed classified frames.

Two ways in, same totals: `observe` counts a frame at once; `tally` (the hot path) only notes how many
frames of each event list arrived and when the last did, and `settle` folds those notes into the totals,
once per batch of frames rather than once per frame. Whoever tallies settles before anything reads the
totals or changes the tracked set (the `Intake` settles at the end of every hand-over).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from pmws.protocol import KNOWN_EVENTS, MARKET_DATA_EVENTS, Classified, FrameShape

_OBJECT, _ARRAY = FrameShape.OBJECT, FrameShape.ARRAY


@dataclass
class TokenStats:
    events: Counter[str] = field(default_factory=Counter)
    last_received_ns: int | None = None
    last_market_data_ns: int | None = None


@dataclass
class FeedStats:
    """Running totals for one session (or one archive hour)."""

    frames: int = 0
    text_frames: int = 0
    binary_frames: int = 0
    control_frames: int = 0
    market_data_messages: int = 0
    json_errors: int = 0
    unknown_shapes: int = 0
    shapes: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    unknown_event_types: Counter[str] = field(default_factory=Counter)
    tokens: dict[str, TokenStats] = field(default_factory=dict)
    untracked_asset_events: int = 0
    #: tallied, not yet settled: (shape, events) → [frames, last receive ns, one of them], by last arrival
    _tallied: dict[tuple[FrameShape, tuple[tuple[str, tuple[str, ...]], ...]], list[Any]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _tallied_for: Container[str] | None = field(default=None, repr=False, compare=False)

    def tally(self, classified: Classified, received_ns: int, tracked: Container[str]) -> None:
        """Count one frame at the next `settle`, exactly as `observe` would now (JSON objects and arrays;
        anything else is observed at once, after what is tallied)."""
        shape = classified.shape
        if shape is not _OBJECT and shape is not _ARRAY:
            self.observe(classified, received_ns, tracked)  # settles what is tallied first
            return
        if tracked is not self._tallied_for:
            self.settle()
            self._tallied_for = tracked
        tallied, key = self._tallied, (shape, classified.events)
        entry = tallied.pop(key, None)  # re-inserted: the dict keeps the order of last arrival
        if entry is None:
            tallied[key] = [1, received_ns, classified]
        else:
            entry[0] += 1
            entry[1] = received_ns
            tallied[key] = entry

    def settle(self) -> None:
        """Fold every tallied frame into the totals (what `observe` did for each, in their order)."""
        tallied, tracked = self._tallied, self._tallied_for
        if not tallied or tracked is None:
            return
        self._tallied = {}
        for count, received_ns, classified in tallied.values():
            self._count(classified, received_ns, tracked, count)

    def observe(self, classified: Classified, received_ns: int, tracked: Container[str]) -> None:
        """Count one frame."""
        self.settle()
        self._count(classified, received_ns, tracked, 1)

    def _count(self, classified: Classified, received_ns: int, tracked: Container[str], n: int) -> None:
        """Count `n` frames alike (same shape and events), the last of them received at `received_ns`."""
        self.frames += n
        shape = classified.shape
        self.shapes[shape] += n  # a StrEnum member: the same key as its text, without `.value`
        if shape is FrameShape.BINARY:
            self.binary_frames += n
            return
        self.text_frames += n
        if shape is FrameShape.CONTROL:
            self.control_frames += n
            return
        if classified.json_error is not None:
            self.json_errors += n
            return
        if shape is FrameShape.JSON_OTHER:
            self.unknown_shapes += n
            return
        if classified.is_market_data:
            self.market_data_messages += n
        if not KNOWN_EVENTS.issuperset(classified.event_types):
            for event_type in classified.unknown_event_types:
                self.unknown_event_types[event_type] += n
        events, tokens = self.events, self.tokens
        for event_type, assets in classified.events:
            events[event_type] += n
            market_data = event_type in MARKET_DATA_EVENTS
            for asset in assets:
                if asset not in tracked:
                    self.untracked_asset_events += n
                    continue
                token = tokens.get(asset)
                if token is None:
                    token = tokens[asset] = TokenStats()
                token.events[event_type] += n
                token.last_received_ns = received_ns
                if market_data:
                    token.last_market_data_ns = received_ns

    def forget(self, asset: str) -> None:
        """Drop a token that is no longer recorded (a long run sees new tokens every five minutes)."""
        self.settle()
        self.tokens.pop(asset, None)

    def market_data_by_token(self) -> dict[str, int]:
        self.settle()
        return {
            asset: sum(n for e, n in s.events.items() if e in MARKET_DATA_EVENTS)
            for asset, s in self.tokens.items()
        }

    def to_json(self) -> dict[str, Any]:
        self.settle()
        return {
            "frames": self.frames,
            "text_frames": self.text_frames,
            "binary_frames": self.binary_frames,
            "control_frames": self.control_frames,
            "market_data_messages": self.market_data_messages,
            "json_errors": self.json_errors,
            "unknown_shapes": self.unknown_shapes,
            "frame_shapes": {str(shape): n for shape, n in self.shapes.items()},
            "events_by_type": dict(self.events),
            "unknown_event_types": dict(self.unknown_event_types),
            "untracked_asset_events": self.untracked_asset_events,
            "events_by_token": {a: dict(s.events) for a, s in sorted(self.tokens.items())},
        }
