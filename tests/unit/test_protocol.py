"""Frame classification and the messages we send (PROTOCOL.md §2, §2.5)."""

from __future__ import annotations

import json

import pytest

from pmws.protocol import FrameShape, classify_text, operation_message, subscribe_message
from tests.conftest import example_bytes


def test_subscription_is_text_json_with_plural_assets_ids() -> None:
    text = subscribe_message(["1", "2"])
    assert isinstance(text, str)
    assert json.loads(text) == {
        "assets_ids": ["1", "2"],
        "type": "market",
        "initial_dump": True,
        "custom_feature_enabled": True,
    }


def test_operations() -> None:
    assert json.loads(operation_message(["1"], "unsubscribe")) == {
        "assets_ids": ["1"],
        "operation": "unsubscribe",
    }
    assert json.loads(operation_message(["1"], "subscribe")) == {
        "assets_ids": ["1"],
        "operation": "subscribe",
        "initial_dump": True,
        "custom_feature_enabled": True,
    }
    with pytest.raises(ValueError):
        operation_message(["1"], "resubscribe")


@pytest.mark.parametrize(
    ("name", "shape", "types", "market_data"),
    [
        ("docs_ws_price_change.json", FrameShape.OBJECT, ("price_change",), True),
        ("ws_book_captured_nautilus.json", FrameShape.OBJECT, ("book",), True),
        ("ws_tick_size_change_2025_nautilus.json", FrameShape.OBJECT, ("tick_size_change",), True),
        ("docs_ws_best_bid_ask.json", FrameShape.OBJECT, ("best_bid_ask",), True),
        ("docs_ws_new_market.json", FrameShape.OBJECT, ("new_market",), False),
        (
            "ws_price_change_burst_captured_nautilus.json",
            FrameShape.ARRAY,
            ("book", "price_change"),
            True,
        ),
        ("frame_server_pong.txt", FrameShape.CONTROL, (), False),
        ("frame_server_no_new_assets.txt", FrameShape.CONTROL, (), False),
    ],
)
def test_classify_real_payloads(
    name: str, shape: FrameShape, types: tuple[str, ...], market_data: bool
) -> None:
    classified = classify_text(example_bytes(name))
    assert classified.shape is shape
    assert classified.event_types == types
    assert classified.is_market_data is market_data


def test_price_change_concerns_both_tokens() -> None:
    classified = classify_text(example_bytes("docs_ws_price_change.json"))
    assert len(classified.asset_ids) == 2


def test_market_resolved_assets_ids_list() -> None:
    wrapper = json.loads(example_bytes("ws_market_resolved_btc5m_pulsearb_fixture.json"))
    classified = classify_text(json.dumps(wrapper["linha_jsonl"]["payload"]).encode())
    assert classified.event_types == ("market_resolved",)
    assert len(classified.asset_ids) == 2


@pytest.mark.parametrize(
    ("payload", "shape"),
    [
        (b"garbage{not json", FrameShape.TEXT),
        (b"[]", FrameShape.ARRAY),
        (b"5", FrameShape.JSON_OTHER),
        (b'[{"event_type":"settlement_preview"}]', FrameShape.ARRAY),
    ],
)
def test_odd_frames_never_raise(payload: bytes, shape: FrameShape) -> None:
    classified = classify_text(payload)
    assert classified.shape is shape
    assert not classified.is_market_data


def test_unknown_event_type_is_reported() -> None:
    classified = classify_text(b'{"event_type":"settlement_preview","market":"0x1"}')
    assert classified.unknown_event_types == ("settlement_preview",)
