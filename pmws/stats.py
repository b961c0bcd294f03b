"""Counts of what the feed delivered, per event type and per token. Pure: fed classified frames."""

from __future__ import annotations

from collections import Counter
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from pmws.protocol import KNOWN_EVENTS, MARKET_DATA_EVENTS, Classified, FrameShape


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

    def observe(self, classified: Classified, received_ns: int, tracked: Container[str]) -> None:
        """Count one frame."""
        self.frames += 1
        shape = classified.shape
        self.shapes[shape] += 1  # a StrEnum member: the same key as its text, without `.value`
        if shape is FrameShape.BINARY:
            self.binary_frames += 1
            return
        self.text_frames += 1
        if shape is FrameShape.CONTROL:
            self.control_frames += 1
            return
        if classified.json_error is not None:
            self.json_errors += 1
            return
        if shape is FrameShape.JSON_OTHER:
            self.unknown_shapes += 1
            return
        if classified.is_market_data:
            self.market_data_messages += 1
        if not KNOWN_EVENTS.issuperset(classified.event_types):
            for event_type in classified.unknown_event_types:
                self.unknown_event_types[event_type] += 1
        events, tokens = self.events, self.tokens
        for event_type, assets in classified.events:
            events[event_type] += 1
            market_data = event_type in MARKET_DATA_EVENTS
            for asset in assets:
                if asset not in tracked:
                    self.untracked_asset_events += 1
                    continue
                token = tokens.get(asset)
                if token is None:
                    token = tokens[asset] = TokenStats()
                token.events[event_type] += 1
                token.last_received_ns = received_ns
                if market_data:
                    token.last_market_data_ns = received_ns

    def forget(self, asset: str) -> None:
        """Drop a token that is no longer recorded (a long run sees new tokens every five minutes)."""
        self.tokens.pop(asset, None)

    def market_data_by_token(self) -> dict[str, int]:
        return {
            asset: sum(n for e, n in s.events.items() if e in MARKET_DATA_EVENTS)
            for asset, s in self.tokens.items()
        }

    def to_json(self) -> dict[str, Any]:
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
