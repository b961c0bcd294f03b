"""What the simulator's websocket side did: connections opened, subscriptions asked for, frames sent.

The websocket side (`pmws.sim.ws`) writes here through two public calls; tests and benchmarks read it
(through `Simulator.sent_frames`, `connections_opened`, `subscriptions`) to compare with what was recorded.
"""

from __future__ import annotations

from pmws.sim.config import SentFrame, SimConfig
from pmws.sim.ws import DATA, JUNK_BINARY


class Traffic:
    """The simulator's own log of its websocket traffic, bounded by `config.max_recorded_frames`."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.sent_frames: list[SentFrame] = []
        self.connections_opened = 0
        self.subscriptions: list[tuple[int, str, list[str]]] = []

    def open_connection(self) -> int:
        """Count a websocket connection; returns its id (1, 2, …)."""
        self.connections_opened += 1
        return self.connections_opened

    def record(self, connection_id: int, payload: bytes, kind: int) -> None:
        """Remember a frame that was handed to a transport."""
        if self.config.record_frames and len(self.sent_frames) < self.config.max_recorded_frames:
            if kind == JUNK_BINARY:
                self.sent_frames.append(SentFrame(connection_id, "binary", payload, False))
            else:
                self.sent_frames.append(SentFrame(connection_id, "text", payload, kind == DATA))
