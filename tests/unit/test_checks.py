"""The gate's named checks: PASS only when every required fact was proven."""

from __future__ import annotations

from pmws.checks import FileCheck, GateFacts, Verdict, evaluate

MARKET = {"tokens": [{"token_id": "1", "outcome": "Up"}, {"token_id": "2", "outcome": "Down"}]}


def good_file(kind: str) -> FileCheck:
    return FileCheck(
        kind=kind,
        path=kind,
        exists=True,
        gzip_ok=True,
        lines=3,
        sha256_matches=True,
        bytes_match=True,
        lines_match=True,
        payload_checked=3,
    )


def facts(**changes: object) -> GateFacts:
    base = GateFacts(
        selected_markets=[MARKET],
        files=[good_file("ws_raw"), good_file("rest_checkpoints")],
        ws_frames=10,
        ws_market_data_messages=5,
        market_data_by_token={"1": 3, "2": 2},
        rest_ok=2,
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def failing(f: GateFacts) -> set[str]:
    verdict, checks = evaluate(f)
    names = {c.name for c in checks if c.required and not c.passed}
    assert (verdict is Verdict.PASS) == (not names)
    return names


def test_pass_when_everything_is_proven() -> None:
    assert failing(facts()) == set()


def test_each_required_fact_is_necessary() -> None:
    assert failing(facts(selected_markets=[])) == {"selected_btc_market_with_both_outcomes"}
    assert failing(facts(ws_market_data_messages=0)) == {"ws_market_data_received"}
    # market data, but none of it for a selected token (an event with no asset id, or another one's)
    assert "ws_market_data_received" in failing(facts(market_data_by_token={}))
    assert failing(facts(rest_ok=1)) == {"rest_checkpoints_ok"}
    bad = good_file("ws_raw")
    bad.sha256_matches = False
    assert failing(facts(files=[bad, good_file("rest_checkpoints")])) == {"checksums_match"}
    cut = good_file("ws_raw")
    cut.gzip_ok, cut.error = False, "truncated"
    assert "outputs_parse" in failing(facts(files=[cut, good_file("rest_checkpoints")]))
    assert failing(facts(files=[good_file("ws_raw")], missing_kinds=["rest_checkpoints"])) == {
        "outputs_parse"
    }
    tampered = good_file("ws_raw")
    tampered.payload_mismatches = 1
    assert failing(facts(files=[tampered, good_file("rest_checkpoints")])) == {"checksums_match"}


def test_a_market_without_both_outcomes_does_not_count() -> None:
    one_sided = {"tokens": [{"token_id": "1", "outcome": "Up"}]}
    assert failing(facts(selected_markets=[one_sided])) == {"selected_btc_market_with_both_outcomes"}


def test_silent_token_is_a_warning_not_a_failure() -> None:
    verdict, checks = evaluate(facts(market_data_by_token={"1": 3}))
    assert verdict is Verdict.PASS
    assert [c.name for c in checks if not c.passed] == ["every_token_has_market_data"]
