"""The per-token coverage state machine, with numbers (no sockets, no clock)."""

from __future__ import annotations

from pmws.coverage import ActionKind, Coverage, TokenState, metric_samples
from pmws.protocol import MARKET_DATA_EVENTS, classify_text


def fresh(*tokens: str) -> Coverage:
    cov = Coverage(resubscribe_timeout=5.0)
    cov.track(tokens)
    return cov


def test_new_tokens_are_unverified_until_a_checkpoint_agrees() -> None:
    cov = fresh("a")
    assert cov.state("a") is TokenState.UNVERIFIED
    cov.on_message("a", 0.5, is_book=True)
    assert cov.on_checkpoint("a", "h2", {"h1"}, 1.0) is None  # never agreed, but the feed delivers it
    assert cov.on_checkpoint("a", "h2", {"h1"}, 2.0) is None
    assert cov.state("a") is TokenState.UNVERIFIED


def test_a_token_whose_first_book_never_came_is_resubscribed() -> None:
    """The documented failure (PROTOCOL.md §0.1, §2.3): an initial snapshot goes missing and the token gets
    nothing at all. Two checkpoints with REST books and no message from the feed: blind, resubscribed."""
    cov = fresh("a")
    assert cov.on_checkpoint("a", "h1", set(), 1.0) is None  # one checkpoint may come before the book
    action = cov.on_checkpoint("a", "h2", set(), 2.0)
    assert action is not None and action.kind is ActionKind.RESUBSCRIBE and action.token_id == "a"
    assert cov.state("a") is TokenState.BLIND and cov.blind_events == 1


def test_quiet_token_rest_equals_the_feed_no_action_and_link_not_stale() -> None:
    cov = fresh("a", "b")
    cov.on_message("a", 0.5, is_book=True)
    cov.on_message("b", 0.5, is_book=True)
    for t in range(1, 10):
        assert cov.on_checkpoint("a", "ha", {"ha"}, float(t)) is None
        assert cov.on_checkpoint("b", "hb", {"hb"}, float(t)) is None
    assert cov.state("a") is TokenState.QUIET
    assert cov.all_quiet(["a", "b"], 9.5, within=2.0)
    assert not cov.all_quiet(["a", "b"], 11.5, within=2.0)  # REST confirmation too old: stale again
    cov.on_checkpoint("a", "h2", {"ha"}, 10.0)  # REST moved on, the feed sent nothing: suspect
    assert not cov.all_quiet(["a", "b"], 10.0, within=2.0)
    assert cov.blind_events == 0


def test_live_token_feed_delivered_since_the_last_agreement() -> None:
    cov = fresh("a")
    cov.on_checkpoint("a", "h1", {"h1"}, 1.0)
    cov.on_message("a", 1.5)
    assert cov.state("a") is TokenState.LIVE
    assert cov.on_checkpoint("a", "h3", {"h2"}, 2.0) is None  # feed moving, only behind REST: not blind
    assert cov.state("a") is TokenState.LIVE
    cov.on_checkpoint("a", "h3", {"h2", "h3"}, 3.0)
    assert cov.state("a") is TokenState.LIVE  # delivered since the previous agreement
    cov.on_checkpoint("a", "h3", {"h3"}, 4.0)
    assert cov.state("a") is TokenState.QUIET
    assert not cov.all_quiet(["a", "missing"], 3.0, within=5.0)


def test_blind_after_two_disagreeing_checkpoints_without_feed_then_recovery_by_book() -> None:
    cov = fresh("a", "b")
    cov.on_message("a", 0.5, is_book=True)
    cov.on_checkpoint("a", "h1", {"h1"}, 1.0)
    assert cov.on_checkpoint("a", "h2", {"h1"}, 2.0) is None  # one strike: the feed may be ms behind
    action = cov.on_checkpoint("a", "h3", {"h1"}, 3.0, feed_hash="h1")
    assert action is not None and action.kind is ActionKind.RESUBSCRIBE
    assert (action.token_id, action.rest_hash, action.feed_hash) == ("a", "h3", "h1")
    assert action.last_message_age_seconds == 2.5
    assert action.last_agreeing_checkpoint_age_seconds == 2.0
    assert cov.state("a") is TokenState.BLIND and cov.blind_events == 1 and cov.resubscribes == 1
    assert cov.on_checkpoint("a", "h4", {"h1"}, 4.0) is None  # already resubscribing: no second action
    assert cov.by_state()[TokenState.BLIND] == 1
    cov.on_message("a", 4.5, is_book=True)
    assert cov.state("a") is TokenState.LIVE and cov.recoveries == 1
    assert cov.due(100.0) == []
    cov.on_checkpoint("a", "h4", {"h4"}, 5.0)
    assert cov.state("a") is TokenState.LIVE  # the fresh book came since the last agreement


def test_feed_message_between_strikes_clears_the_suspicion() -> None:
    cov = fresh("a")
    cov.on_checkpoint("a", "h1", {"h1"}, 1.0)
    cov.on_checkpoint("a", "h2", {"h1"}, 2.0)
    cov.on_message("a", 2.5)
    assert cov.on_checkpoint("a", "h3", {"h2"}, 3.0) is None
    assert cov.blind_events == 0


def test_resubscribe_without_a_fresh_book_asks_for_a_reconnect_once() -> None:
    cov = fresh("a")
    cov.on_checkpoint("a", "h1", {"h1"}, 1.0)
    cov.on_checkpoint("a", "h2", {"h1"}, 2.0)
    assert cov.on_checkpoint("a", "h2", {"h1"}, 3.0) is not None
    assert cov.due(7.9) == []
    (action,) = cov.due(8.0)
    assert action.kind is ActionKind.RECONNECT and action.token_id == "a"
    assert cov.due(9.0) == [] and cov.resubscribe_reconnects == 1
    cov.on_message("a", 8.5, is_book=True)  # the reconnect brought it back
    assert cov.recoveries == 1 and cov.due(100.0) == []
    assert cov.state("a") is TokenState.LIVE


def test_a_token_no_reconnect_brings_back_stays_blind_without_churning_its_link() -> None:
    cov = fresh("a")
    cov.on_checkpoint("a", "h1", {"h1"}, 1.0)
    cov.on_checkpoint("a", "h2", {"h1"}, 2.0)
    assert cov.on_checkpoint("a", "h3", {"h1"}, 3.0) is not None  # resubscribe
    (action,) = cov.due(8.0)  # no book: reconnect, once
    assert action.kind is ActionKind.RECONNECT
    for t in range(9, 60):  # the server never serves it again: blind, counted once, no further action
        assert cov.on_checkpoint("a", f"h{t}", {"h1"}, float(t)) is None
        assert cov.due(float(t)) == []
    assert cov.state("a") is TokenState.BLIND
    assert (cov.blind_events, cov.resubscribes, cov.resubscribe_reconnects) == (1, 1, 1)
    cov.on_message("a", 60.0)  # it comes back: the next outage is handled from the start again
    cov.on_checkpoint("a", "h60", {"h60"}, 61.0)
    cov.on_checkpoint("a", "h61", {"h60"}, 62.0)
    assert cov.on_checkpoint("a", "h62", {"h60"}, 63.0) is not None


def test_removed_token_is_forgotten_and_ignored() -> None:
    cov = fresh("a", "b")
    cov.on_checkpoint("a", "h1", {"h1"}, 1.0)
    cov.track(["b"])
    assert set(cov.tokens) == {"b"}
    assert cov.on_checkpoint("a", "h2", {"h1"}, 2.0) is None
    cov.on_message("a", 2.0)
    assert cov.state("a") is TokenState.UNVERIFIED
    assert cov.by_state() == {
        TokenState.LIVE: 0,
        TokenState.QUIET: 0,
        TokenState.BLIND: 0,
        TokenState.UNVERIFIED: 1,
    }


def test_tallied_frames_settle_as_one_message_per_market_data_event_and_token() -> None:
    frames = [
        b'{"event_type":"book","asset_id":"a"}',
        b'{"event_type":"price_change","price_changes":[{"asset_id":"a"},{"asset_id":"b"},{"asset_id":"a"}]}',
        b'{"event_type":"price_change","price_changes":[{"asset_id":"a"},{"asset_id":"b"},{"asset_id":"a"}]}',
        b'[{"event_type":"last_trade_price","asset_id":"b"},{"event_type":"book","asset_id":"c"}]',
        b'{"event_type":"new_market","assets_ids":["a","b"]}',  # names tokens, but is no data about them
        b'{"event_type":"mystery","asset_id":"a"}',  # an unknown event type is not market data
        b"PONG",
    ]
    tallied, each = fresh("a", "b", "c"), fresh("a", "b", "c")
    for cov in (tallied, each):
        cov.tokens["c"].resubscribed_at = 1.0  # waiting for a fresh book
    for frame in frames:
        classified = classify_text(frame)
        tallied.tally(classified.events)
        for kind, assets in classified.events:
            if kind in MARKET_DATA_EVENTS:
                for asset in assets:
                    each.on_message(asset, 2.0, is_book=kind == "book")
    assert tallied.tokens["a"].messages_since_agree == 0  # nothing applied before settling
    tallied.settle(2.0)
    assert tallied.tokens == each.tokens
    assert [tallied.tokens[t].messages_since_agree for t in "abc"] == [3, 3, 1]
    assert tallied.tokens["c"].resubscribed_at is None and tallied.tokens["a"].last_message_at == 2.0


def test_a_checkpoint_counts_the_frames_tallied_before_it() -> None:
    cov = fresh("a")
    cov.on_checkpoint("a", "h1", {"h1"}, 1.0)
    cov.tally(classify_text(b'{"event_type":"book","asset_id":"a"}').events)
    cov.on_checkpoint("a", "h1", {"h1"}, 2.0)  # agrees again: LIVE only if the message counted first
    assert cov.state("a") is TokenState.LIVE


def test_metric_samples_only_for_labelled_tokens_one_state_series_each() -> None:
    cov = fresh("a", "b")
    cov.on_message("a", 1.0, is_book=True)
    cov.on_checkpoint("a", "h", {"h"}, 2.0)
    out = metric_samples(cov, {"a": ("btc-updown-5m-1", "Up")}, 5.0)
    base = (("token_id", "a"), ("market_slug", "btc-updown-5m-1"), ("outcome", "Up"))
    assert out["pmws_token_state"][2] == {(*base, ("state", "live")): 1}
    assert out["pmws_token_last_message_age_seconds"][2] == {base: 4.0}
    assert out["pmws_token_last_agreeing_checkpoint_age_seconds"][2] == {base: 3.0}
    counts = out["pmws_tokens_by_state"][2]
    assert counts[(("state", "live"),)] == 1 and counts[(("state", "unverified"),)] == 1


def test_messages_before_the_token_went_blind_do_not_hide_it() -> None:
    cov = fresh("a")
    cov.on_checkpoint("a", "h1", {"h1"}, 1.0)
    cov.on_message("a", 1.2)  # then the server silently drops the token; REST never agrees again
    assert cov.on_checkpoint("a", "h5", {"h1", "h2"}, 2.0) is None  # delivered since the last checkpoint
    assert cov.on_checkpoint("a", "h6", {"h1", "h2"}, 3.0) is None  # strike one
    action = cov.on_checkpoint("a", "h7", {"h1", "h2"}, 4.0)
    assert action is not None and action.kind is ActionKind.RESUBSCRIBE
    assert cov.state("a") is TokenState.BLIND
