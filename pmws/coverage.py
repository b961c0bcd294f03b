"""Per-token feed coverage from REST checkpoints: live, quiet, blind or unverified. Pure.

A connection can answer PONG and carry data for most tokens while one token silently stops (a server-side
drop), and a token can be quiet because nothing trades. Only REST `/books` tells them apart (PROTOCOL.md §4,
§5): if the REST hash is one the feed produced, the feed is current (QUIET when it sent nothing since the
last agreeing checkpoint, else LIVE). If REST has moved on (disagrees) at two checkpoints in a row and the
feed sent nothing for the token since the one before, the token is BLIND. One disagreeing checkpoint is only
a suspicion (the feed may be a few ms behind REST, or waiting for a `last_trade_price`, §5.3), and messages
that arrived before the token went blind must not hide it: hence "since the previous checkpoint". Then
the caller resubscribes it. A fresh `book` for it within `resubscribe_timeout` recovers it; otherwise the
caller reconnects its link.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pmws.protocol import MARKET_DATA_EVENTS


class TokenState(StrEnum):
    LIVE = "live"
    QUIET = "quiet"
    BLIND = "blind"
    UNVERIFIED = "unverified"


class ActionKind(StrEnum):
    RESUBSCRIBE = "resubscribe"
    RECONNECT = "reconnect"


@dataclass(frozen=True)
class Action:
    """What the I/O code must do for a token, and the facts for its lifecycle record."""

    kind: ActionKind
    token_id: str
    rest_hash: str = ""
    feed_hash: str | None = None
    last_message_age_seconds: float | None = None
    last_agreeing_checkpoint_age_seconds: float | None = None


@dataclass
class TokenCoverage:
    """What is known about one token."""

    state: TokenState = TokenState.UNVERIFIED
    last_message_at: float | None = None
    last_agree_at: float | None = None
    messages_since_agree: int = 0
    messages_since_checkpoint: int = 0
    strikes: int = 0  # consecutive disagreeing checkpoints with no feed message since the last agreement
    resubscribed_at: float | None = None  # waiting for a fresh book since then
    gave_up: bool = False  # resubscribe and reconnect both failed: stay BLIND, act again only after a message


@dataclass
class Coverage:
    """Per-token states for one recorder; `resubscribe_timeout` bounds the wait for a fresh book."""

    resubscribe_timeout: float
    tokens: dict[str, TokenCoverage] = field(default_factory=dict)
    blind_events: int = 0
    resubscribes: int = 0
    resubscribe_reconnects: int = 0
    recoveries: int = 0  # blind tokens that the feed reached again
    #: frames noted by `tally`, by their (event_type, asset ids) list, until `settle` applies them
    _tallied: dict[tuple[tuple[str, tuple[str, ...]], ...], int] = field(default_factory=dict, repr=False)

    def tally(self, events: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
        """Note one frame's events (its classification's `events`) for the next `settle`: the hot path."""
        tallied = self._tallied
        tallied[events] = tallied.get(events, 0) + 1

    def settle(self, now: float) -> None:
        """Apply the tallied frames as messages received at `now`: every market-data event counts once
        for each token it names (what `on_message` per event would do; their order cannot matter, `now`
        being the same)."""
        if not self._tallied:
            return
        tallied, self._tallied = self._tallied, {}
        for events, count in tallied.items():
            for kind, assets in events:
                if kind in MARKET_DATA_EVENTS:
                    for asset in assets:
                        self.on_message(asset, now, is_book=kind == "book", count=count)

    def track(self, token_ids: Iterable[str]) -> None:
        """Follow exactly these tokens (new ones start UNVERIFIED, removed ones are forgotten)."""
        wanted = list(token_ids)
        for token in wanted:
            self.tokens.setdefault(token, TokenCoverage())
        for token in set(self.tokens) - set(wanted):
            del self.tokens[token]

    def on_message(self, token_id: str, now: float, *, is_book: bool = False, count: int = 1) -> None:
        """The feed delivered `count` market-data events for this token (a `book` ends a pending
        resubscribe)."""
        cov = self.tokens.get(token_id)
        if cov is None:
            return
        cov.last_message_at = now
        cov.messages_since_agree += count
        cov.messages_since_checkpoint += count
        cov.strikes = 0
        cov.gave_up = False
        if cov.state is TokenState.BLIND:
            self.recoveries += 1  # after a resubscribe, or after the reconnect that followed it
        if cov.state in (TokenState.BLIND, TokenState.QUIET):
            cov.state = TokenState.LIVE if cov.last_agree_at is not None else TokenState.UNVERIFIED
        if is_book:
            cov.resubscribed_at = None

    def on_checkpoint(
        self,
        token_id: str,
        rest_hash: str,
        feed_hashes: Container[str],
        now: float,
        *,
        feed_hash: str | None = None,
    ) -> Action | None:
        """A REST summary for the token; `feed_hashes` holds the hashes the feed recently produced for it,
        `feed_hash` the latest of them (named in the action)."""
        self.settle(now)  # a frame tallied before this checkpoint counts before it
        cov = self.tokens.get(token_id)
        if cov is None:
            return None
        delivered, cov.messages_since_checkpoint = cov.messages_since_checkpoint, 0
        if rest_hash in feed_hashes:
            cov.state = TokenState.LIVE if cov.messages_since_agree else TokenState.QUIET
            cov.last_agree_at, cov.messages_since_agree, cov.strikes = now, 0, 0
            return None
        if cov.last_agree_at is None and cov.last_message_at is not None:
            return None  # the feed delivers it, no agreement yet: the tracker's concern, not coverage's
        # (never a message, not even its first book: the documented missing initial snapshot, §0.1 and
        # §2.3, which a resubscribe asks for again, like a token that went blind)
        if delivered:  # the feed moves, only behind REST: the tracker reports any real divergence
            cov.state, cov.strikes = TokenState.LIVE, 0
            return None
        cov.strikes += 1
        if cov.strikes < 2 or cov.resubscribed_at is not None or cov.gave_up:
            return None  # a token the server no longer serves must not reconnect its link every checkpoint
        if cov.state is not TokenState.BLIND:
            self.blind_events += 1
        cov.state = TokenState.BLIND
        self.resubscribes += 1
        cov.resubscribed_at = now
        return Action(
            ActionKind.RESUBSCRIBE,
            token_id,
            rest_hash,
            feed_hash,
            _age(now, cov.last_message_at),
            _age(now, cov.last_agree_at),
        )

    def due(self, now: float) -> list[Action]:
        """Reconnects for tokens whose resubscribe brought no fresh book in time (each only once)."""
        actions = []
        for token, cov in self.tokens.items():
            if cov.resubscribed_at is not None and now - cov.resubscribed_at >= self.resubscribe_timeout:
                cov.resubscribed_at = None
                cov.gave_up = True
                self.resubscribe_reconnects += 1
                actions.append(Action(ActionKind.RECONNECT, token))
        return actions

    def all_quiet(self, token_ids: Iterable[str], now: float, *, within: float) -> bool:
        """Every token QUIET and confirmed by REST within `within` s: a silent link is then not stale."""
        ids = list(token_ids)
        for token in ids:
            cov = self.tokens.get(token)
            if cov is None or cov.state is not TokenState.QUIET or cov.last_agree_at is None or cov.strikes:
                return False
            if now - cov.last_agree_at >= within:
                return False
        return bool(ids)

    def state(self, token_id: str) -> TokenState:
        cov = self.tokens.get(token_id)
        return cov.state if cov is not None else TokenState.UNVERIFIED

    def by_state(self) -> dict[TokenState, int]:
        counts = dict.fromkeys(TokenState, 0)
        for cov in list(self.tokens.values()):  # read from the metrics thread: iterate over a copy
            counts[cov.state] += 1
        return counts


def _age(now: float, at: float | None) -> float | None:
    return None if at is None else round(now - at, 3)


def metric_samples(
    coverage: Coverage, labels: dict[str, tuple[str, str]], now: float
) -> dict[str, tuple[str, str, Any]]:
    """Per-token gauges (one series per tracked token, labelled with its current state) and the counts.

    `labels` maps each tracked token to (market_slug, outcome); tokens outside it are not exported, so the
    label set stays bounded by what is subscribed.
    """
    state: dict[Any, float] = {}
    message_age: dict[Any, float] = {}
    agree_age: dict[Any, float] = {}
    for token, cov in list(coverage.tokens.items()):  # the metrics thread: a copy, the loop may change it
        if token not in labels:
            continue
        slug, outcome = labels[token]
        base = (("token_id", token), ("market_slug", slug), ("outcome", outcome))
        state[(*base, ("state", cov.state.value))] = 1
        message_age[base] = -1 if cov.last_message_at is None else now - cov.last_message_at
        agree_age[base] = -1 if cov.last_agree_at is None else now - cov.last_agree_at
    counts = {(("state", s.value),): n for s, n in coverage.by_state().items()}
    return {
        "pmws_token_state": ("gauge", "1 for each tracked token's current coverage state", state),
        "pmws_token_last_message_age_seconds": (
            "gauge",
            "seconds since the feed last delivered an event for the token (-1: never)",
            message_age,
        ),
        "pmws_token_last_agreeing_checkpoint_age_seconds": (
            "gauge",
            "seconds since REST /books last agreed with the token's feed book (-1: never)",
            agree_age,
        ),
        "pmws_tokens_by_state": ("gauge", "tracked tokens by coverage state", counts),
    }
