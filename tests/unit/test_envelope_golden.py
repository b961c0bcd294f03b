"""Every captured frame's envelope, byte for byte, as the archive format fixed it (the hot path may change).

The digests were taken with the envelope builder before the hot-path rewrite (issue 14); each names the frame
it belongs to, so a change shows which kind of frame it broke.
"""

from __future__ import annotations

import hashlib
import json

from pmws.envelope import ConnectionContext, TrackedToken, build_envelope
from tests.conftest import EXAMPLES


def frames() -> dict[str, tuple[bytes, bool]]:
    """name → (payload, binary): each fixture as stored (indented), each event compact, each array compact,
    and the shapes no fixture has (control texts, garbage, other JSON, binary, escapes)."""
    out: dict[str, tuple[bytes, bool]] = {}
    for path in sorted(EXAMPLES.glob("*ws_*.json")) + sorted(EXAMPLES.glob("frame_server_*.txt")):
        data = path.read_bytes()
        out[f"{path.name}:as-stored"] = (data, False)
        if path.suffix != ".json":
            continue
        parsed = json.loads(data)
        events = parsed if isinstance(parsed, list) else [parsed]
        for i, event in enumerate(events):
            out[f"{path.name}:{i}"] = (json.dumps(event, separators=(",", ":")).encode(), False)
        if isinstance(parsed, list):
            out[f"{path.name}:array"] = (json.dumps(parsed, separators=(",", ":")).encode(), False)
    out.update(
        {
            "pong": (b"PONG", False),
            "pong-padded": (b" PONG\n", False),
            "no-new-assets": (b"NO NEW ASSETS", False),
            "garbage": (b"hello world", False),
            "truncated": (b'{"event_type":"book","asset_id":"1', False),
            "number": (b"12345678901234567890123", False),
            "array-of-numbers": (b"[1,2,3]", False),
            "empty-array": (b"[]", False),
            "empty-object": (b"{}", False),
            "unknown-event": (b'{"event_type":"brand_new","asset_id":"111"}', False),
            "event-type-number": (b'{"event_type":7,"assets_ids":["111","x",3]}', False),
            "unicode-and-escapes": (
                '{"event_type":"book","asset_id":"111","note":"é\\n\\"✓"}'.encode(),
                False,
            ),
            "crlf-inside": (b'{"event_type":"book",\r\n"asset_id":"222"}', False),
            "binary": (b"\x00\x01\xffbinary", True),
        }
    )
    return out


def contexts() -> list[ConnectionContext]:
    """A small subscription (ids listed, tokens from the fixtures tracked) and a large sharded one."""
    ids: list[str] = ["111", "222"]
    for payload, _ in frames().values():
        try:
            event = json.loads(payload)
        except ValueError:
            continue
        for e in event if isinstance(event, list) else [event]:
            if isinstance(e, dict):
                ids += [c["asset_id"] for c in e.get("price_changes") or [] if isinstance(c, dict)]
                ids += [e["asset_id"]] if isinstance(e.get("asset_id"), str) else []
    ids = list(dict.fromkeys(ids))
    tokens = tuple(
        TrackedToken(f"btc-updown-5m-{i}", f"0x{i:x}", t, "Up" if i % 2 else "Down", "2026-03-12T09:25:00Z")
        for i, t in enumerate(ids)
    )
    small = ConnectionContext("20261124T000000Z-abcdef", 3, "wss://example/ws/market", tokens[:6])
    fillers = tuple(TrackedToken("m", "0x0", f"f{i}", "Up", "2026-03-12T09:25:00Z") for i in range(40))
    large = ConnectionContext("s2", 11, "wss://example/ws/market?x=1", tokens + fillers, shard="1of4")
    return [small, large]


def digests() -> dict[str, str]:
    out = {}
    received = 1_764_000_000_123_456_789
    for c, context in enumerate(contexts()):
        for n, (name, (payload, binary)) in enumerate(sorted(frames().items())):
            received += 337_000_000 * (n % 3)  # same second, next ones: the cached date text is exercised
            line, _ = build_envelope(
                payload,
                binary=binary,
                context=context,
                received_ns=received,
                message_sequence=n + 1,
                global_sequence=1000 * c + n + 1,
            )
            out[f"{c}:{name}"] = hashlib.sha256(line).hexdigest()[:16]  # 64 bits tell a change
    return out


def test_every_fixture_frame_envelopes_to_the_same_bytes() -> None:
    got = digests()
    assert sorted(got) == sorted(GOLDEN)
    assert {k: v for k, v in got.items() if GOLDEN[k] != v} == {}


GOLDEN: dict[str, str] = {
    "0:array-of-numbers": "61418e468f8c8783",
    "0:binary": "cc70f34de0de8bdf",
    "0:crlf-inside": "98f16705af8c6742",
    "0:docs_ws_best_bid_ask.json:0": "f2e9edfd81ce6134",
    "0:docs_ws_best_bid_ask.json:as-stored": "7852c18b51eeb883",
    "0:docs_ws_book.json:0": "954019638e15b570",
    "0:docs_ws_book.json:as-stored": "0f9e96338f7ce886",
    "0:docs_ws_last_trade_price.json:0": "bb636f3d008d3d99",
    "0:docs_ws_last_trade_price.json:as-stored": "c47e82589f12da85",
    "0:docs_ws_market_resolved.json:0": "682fccb381c1a872",
    "0:docs_ws_market_resolved.json:as-stored": "be2f82414fe21dea",
    "0:docs_ws_new_market.json:0": "f192a37830c39299",
    "0:docs_ws_new_market.json:as-stored": "28241ffc5df0a7ee",
    "0:docs_ws_price_change.json:0": "7e8afe90aee61853",
    "0:docs_ws_price_change.json:as-stored": "5632a6189d916ffe",
    "0:docs_ws_price_change_legacy_changes_schema.json:0": "7cfdc99c1687084e",
    "0:docs_ws_price_change_legacy_changes_schema.json:as-stored": "4901818ec60c1a14",
    "0:docs_ws_subscribe_market.json:0": "72adc5eecd7dae0a",
    "0:docs_ws_subscribe_market.json:as-stored": "cc2fd7b44bf24f80",
    "0:docs_ws_tick_size_change.json:0": "e4d7770382b1a031",
    "0:docs_ws_tick_size_change.json:as-stored": "1b1839c996ea558c",
    "0:empty-array": "bc4858c61777a090",
    "0:empty-object": "0c1cc0749eded6dd",
    "0:event-type-number": "b63177806dcd8ebb",
    "0:frame_server_no_new_assets.txt:as-stored": "30b7d7312c3f90d5",
    "0:frame_server_pong.txt:as-stored": "ab6830fa70b1f9e9",
    "0:garbage": "97c733cbbbb0914e",
    "0:no-new-assets": "b181c557287b34b6",
    "0:number": "b22e7978eb9722e9",
    "0:pong": "6ac59995da52e97d",
    "0:pong-padded": "eb9423b28a30084c",
    "0:truncated": "b9da1cea3db7040f",
    "0:unicode-and-escapes": "a4cef03ad25945cd",
    "0:unknown-event": "6392ccd86f774d8d",
    "0:ws_book_2024_nautilus.json:0": "b19533e2def566b6",
    "0:ws_book_2024_nautilus.json:as-stored": "30f9a1db2b03854a",
    "0:ws_book_captured_nautilus.json:0": "f10ca06774d7c6f0",
    "0:ws_book_captured_nautilus.json:as-stored": "b86e89552f885a21",
    "0:ws_last_trade_price_2024_nautilus.json:0": "94412297bbb3f8c5",
    "0:ws_last_trade_price_2024_nautilus.json:as-stored": "65170f10d25f5b6c",
    "0:ws_market_resolved_btc5m_pulsearb_fixture.json:0": "93961f30328f6811",
    "0:ws_market_resolved_btc5m_pulsearb_fixture.json:as-stored": "3216013f6cd912e7",
    "0:ws_price_change_burst_captured_nautilus.json:0": "4f54bd8264bfc1f5",
    "0:ws_price_change_burst_captured_nautilus.json:1": "9a83523922555875",
    "0:ws_price_change_burst_captured_nautilus.json:10": "4d438a553e988637",
    "0:ws_price_change_burst_captured_nautilus.json:11": "6a131d7723dd1fde",
    "0:ws_price_change_burst_captured_nautilus.json:12": "2b4689f5430ab48b",
    "0:ws_price_change_burst_captured_nautilus.json:13": "3346701435de4414",
    "0:ws_price_change_burst_captured_nautilus.json:14": "61216bf2fb2b55a2",
    "0:ws_price_change_burst_captured_nautilus.json:15": "b50ec3907f43b203",
    "0:ws_price_change_burst_captured_nautilus.json:16": "c7f76be0363c97b0",
    "0:ws_price_change_burst_captured_nautilus.json:17": "0d08688be0488bb0",
    "0:ws_price_change_burst_captured_nautilus.json:18": "6110a7f9847ad05c",
    "0:ws_price_change_burst_captured_nautilus.json:19": "ff3af6b3908a19e4",
    "0:ws_price_change_burst_captured_nautilus.json:2": "6121156bfd585c45",
    "0:ws_price_change_burst_captured_nautilus.json:20": "8e0075b82f6da3c5",
    "0:ws_price_change_burst_captured_nautilus.json:21": "f3a4c8e8d79207d9",
    "0:ws_price_change_burst_captured_nautilus.json:22": "092d403703312c3b",
    "0:ws_price_change_burst_captured_nautilus.json:23": "bf38d4a4801bf74b",
    "0:ws_price_change_burst_captured_nautilus.json:24": "9d884ee45a195b70",
    "0:ws_price_change_burst_captured_nautilus.json:25": "8a672f023ebe5776",
    "0:ws_price_change_burst_captured_nautilus.json:26": "0292e42d632db26f",
    "0:ws_price_change_burst_captured_nautilus.json:27": "3799ae41a69743dc",
    "0:ws_price_change_burst_captured_nautilus.json:28": "8006dc086fe9d5e5",
    "0:ws_price_change_burst_captured_nautilus.json:29": "3e4401323ae8d037",
    "0:ws_price_change_burst_captured_nautilus.json:3": "a3d425f66954b1e8",
    "0:ws_price_change_burst_captured_nautilus.json:30": "cf0487203f45d079",
    "0:ws_price_change_burst_captured_nautilus.json:31": "3b06311b65753813",
    "0:ws_price_change_burst_captured_nautilus.json:32": "3c42702e28bf5c6d",
    "0:ws_price_change_burst_captured_nautilus.json:33": "2efe5e6788652d55",
    "0:ws_price_change_burst_captured_nautilus.json:34": "1f27f361c26d3af0",
    "0:ws_price_change_burst_captured_nautilus.json:35": "b12de6c1a9c000c9",
    "0:ws_price_change_burst_captured_nautilus.json:36": "e91d42fb1a6089d0",
    "0:ws_price_change_burst_captured_nautilus.json:37": "d258ccf179d560b4",
    "0:ws_price_change_burst_captured_nautilus.json:38": "cc60b6658b947ac1",
    "0:ws_price_change_burst_captured_nautilus.json:39": "9ea538afb22a4889",
    "0:ws_price_change_burst_captured_nautilus.json:4": "fa2ccc95e8702d3e",
    "0:ws_price_change_burst_captured_nautilus.json:40": "12e482694ffa8146",
    "0:ws_price_change_burst_captured_nautilus.json:41": "752cd03052525dc7",
    "0:ws_price_change_burst_captured_nautilus.json:42": "fe09baab03d0d57b",
    "0:ws_price_change_burst_captured_nautilus.json:43": "562e818f4b246d14",
    "0:ws_price_change_burst_captured_nautilus.json:44": "9462a09a91255185",
    "0:ws_price_change_burst_captured_nautilus.json:45": "031be79a90f0ed18",
    "0:ws_price_change_burst_captured_nautilus.json:46": "f5199438b01f27f4",
    "0:ws_price_change_burst_captured_nautilus.json:47": "5e05bd36c2074957",
    "0:ws_price_change_burst_captured_nautilus.json:48": "c517c9eed7696abc",
    "0:ws_price_change_burst_captured_nautilus.json:49": "a74aac35f4e6e49d",
    "0:ws_price_change_burst_captured_nautilus.json:5": "7ce7953858dd620f",
    "0:ws_price_change_burst_captured_nautilus.json:50": "a975c37edd700c06",
    "0:ws_price_change_burst_captured_nautilus.json:6": "0e62864f7a4ed431",
    "0:ws_price_change_burst_captured_nautilus.json:7": "623a8d9f1b0a6e0f",
    "0:ws_price_change_burst_captured_nautilus.json:8": "c24267ee9bee3529",
    "0:ws_price_change_burst_captured_nautilus.json:9": "4fd4bfc983ed1f57",
    "0:ws_price_change_burst_captured_nautilus.json:array": "e00876c0d7304e29",
    "0:ws_price_change_burst_captured_nautilus.json:as-stored": "d7a2b57c15712bd7",
    "0:ws_price_change_legacy_flat_2024_nautilus.json:0": "6ffac9f365f6cc0c",
    "0:ws_price_change_legacy_flat_2024_nautilus.json:as-stored": "3d4b0228f86bb4cd",
    "0:ws_tick_size_change_2025_nautilus.json:0": "44ae44b5e75ffcf8",
    "0:ws_tick_size_change_2025_nautilus.json:as-stored": "2bf0004f093fe7b1",
    "1:array-of-numbers": "0b9b1b02451ae4d4",
    "1:binary": "952fb041848e1523",
    "1:crlf-inside": "4cc4237bc8124b21",
    "1:docs_ws_best_bid_ask.json:0": "88dd863126a55cb8",
    "1:docs_ws_best_bid_ask.json:as-stored": "baf871fdf3f70691",
    "1:docs_ws_book.json:0": "f0ddd48f51d9c696",
    "1:docs_ws_book.json:as-stored": "0e7e38c506e11174",
    "1:docs_ws_last_trade_price.json:0": "56a7d4f4243ebff4",
    "1:docs_ws_last_trade_price.json:as-stored": "cb3adc57e429d224",
    "1:docs_ws_market_resolved.json:0": "07fae8389e7a2d5b",
    "1:docs_ws_market_resolved.json:as-stored": "e3fd8b510a6932f8",
    "1:docs_ws_new_market.json:0": "0f4cee9a6afcf8cc",
    "1:docs_ws_new_market.json:as-stored": "99e1c1a456238af1",
    "1:docs_ws_price_change.json:0": "caebb1cfecc6dd9b",
    "1:docs_ws_price_change.json:as-stored": "514156d816e8e084",
    "1:docs_ws_price_change_legacy_changes_schema.json:0": "958d34ba6e22db51",
    "1:docs_ws_price_change_legacy_changes_schema.json:as-stored": "42aa2f5934228e84",
    "1:docs_ws_subscribe_market.json:0": "3911262469e09f80",
    "1:docs_ws_subscribe_market.json:as-stored": "5b24ffe334e87d8a",
    "1:docs_ws_tick_size_change.json:0": "87040e393d59ea77",
    "1:docs_ws_tick_size_change.json:as-stored": "b316456294e01a6d",
    "1:empty-array": "e03bb14bb30d0cd6",
    "1:empty-object": "9617afb97ea59b40",
    "1:event-type-number": "776e86729dbf8fd4",
    "1:frame_server_no_new_assets.txt:as-stored": "84423ad45de410c2",
    "1:frame_server_pong.txt:as-stored": "895476916ce1a912",
    "1:garbage": "decb1fcbcd3ca1c0",
    "1:no-new-assets": "009ac0f0c8790394",
    "1:number": "0a5bc94995585c7c",
    "1:pong": "942092940558f059",
    "1:pong-padded": "485d90270686f0ed",
    "1:truncated": "28e281560a11fbde",
    "1:unicode-and-escapes": "25df173c9cfb3e6f",
    "1:unknown-event": "804ae8b9cb546b31",
    "1:ws_book_2024_nautilus.json:0": "b582aadac7c97a23",
    "1:ws_book_2024_nautilus.json:as-stored": "d3ccba56cd580566",
    "1:ws_book_captured_nautilus.json:0": "4c53c32ff6338009",
    "1:ws_book_captured_nautilus.json:as-stored": "1574005d5e0311ef",
    "1:ws_last_trade_price_2024_nautilus.json:0": "ff0a5c03aeecfb1f",
    "1:ws_last_trade_price_2024_nautilus.json:as-stored": "c7403063e8e58cad",
    "1:ws_market_resolved_btc5m_pulsearb_fixture.json:0": "ab01a702270be03e",
    "1:ws_market_resolved_btc5m_pulsearb_fixture.json:as-stored": "5e9e457a19574cb3",
    "1:ws_price_change_burst_captured_nautilus.json:0": "cc6b1eb1cf2137cb",
    "1:ws_price_change_burst_captured_nautilus.json:1": "fb71337bdfb8aa81",
    "1:ws_price_change_burst_captured_nautilus.json:10": "0860c6cb10b299d0",
    "1:ws_price_change_burst_captured_nautilus.json:11": "0d1c8b92be969efd",
    "1:ws_price_change_burst_captured_nautilus.json:12": "f9143ac49768db72",
    "1:ws_price_change_burst_captured_nautilus.json:13": "4824145d4a82e29d",
    "1:ws_price_change_burst_captured_nautilus.json:14": "227a73d60712ffbb",
    "1:ws_price_change_burst_captured_nautilus.json:15": "131cb31c0c7a74e5",
    "1:ws_price_change_burst_captured_nautilus.json:16": "b2b861882c6f252c",
    "1:ws_price_change_burst_captured_nautilus.json:17": "0d7b132d1778fb0f",
    "1:ws_price_change_burst_captured_nautilus.json:18": "fb1403b48ec9aa8f",
    "1:ws_price_change_burst_captured_nautilus.json:19": "f939c1be13eec68a",
    "1:ws_price_change_burst_captured_nautilus.json:2": "209f897a6b17fb61",
    "1:ws_price_change_burst_captured_nautilus.json:20": "0dd916b1c0b3b107",
    "1:ws_price_change_burst_captured_nautilus.json:21": "43037897ac5f26da",
    "1:ws_price_change_burst_captured_nautilus.json:22": "975f7376c068e523",
    "1:ws_price_change_burst_captured_nautilus.json:23": "91ecd4df1911b04d",
    "1:ws_price_change_burst_captured_nautilus.json:24": "a51032d39dc3cf0a",
    "1:ws_price_change_burst_captured_nautilus.json:25": "45645f949d2c9e5b",
    "1:ws_price_change_burst_captured_nautilus.json:26": "f5553145a4c9a84b",
    "1:ws_price_change_burst_captured_nautilus.json:27": "690d0d8c0e7e0527",
    "1:ws_price_change_burst_captured_nautilus.json:28": "783412c8f3faa057",
    "1:ws_price_change_burst_captured_nautilus.json:29": "7edeeb03f4a9b8dc",
    "1:ws_price_change_burst_captured_nautilus.json:3": "983368ee71f4245c",
    "1:ws_price_change_burst_captured_nautilus.json:30": "754159237e8923a3",
    "1:ws_price_change_burst_captured_nautilus.json:31": "7146ade532b3d4c9",
    "1:ws_price_change_burst_captured_nautilus.json:32": "914723b082fcc0b5",
    "1:ws_price_change_burst_captured_nautilus.json:33": "12dff9e8652d572c",
    "1:ws_price_change_burst_captured_nautilus.json:34": "f6d57197ac7271d3",
    "1:ws_price_change_burst_captured_nautilus.json:35": "fc5ce179701f88f1",
    "1:ws_price_change_burst_captured_nautilus.json:36": "6a3f012e1df614bb",
    "1:ws_price_change_burst_captured_nautilus.json:37": "4efeba5ddff680a1",
    "1:ws_price_change_burst_captured_nautilus.json:38": "fc859f26ccd3c67b",
    "1:ws_price_change_burst_captured_nautilus.json:39": "0464412df447e8e4",
    "1:ws_price_change_burst_captured_nautilus.json:4": "303318475ef6f5dd",
    "1:ws_price_change_burst_captured_nautilus.json:40": "123dedfe1747090d",
    "1:ws_price_change_burst_captured_nautilus.json:41": "ee489601c63c6b6a",
    "1:ws_price_change_burst_captured_nautilus.json:42": "dd35801376e59726",
    "1:ws_price_change_burst_captured_nautilus.json:43": "30e90c0c3866b073",
    "1:ws_price_change_burst_captured_nautilus.json:44": "0fc7774b5a27f789",
    "1:ws_price_change_burst_captured_nautilus.json:45": "a794f20bd2b137ad",
    "1:ws_price_change_burst_captured_nautilus.json:46": "132751331a6bb022",
    "1:ws_price_change_burst_captured_nautilus.json:47": "85268a93e4b8c23c",
    "1:ws_price_change_burst_captured_nautilus.json:48": "536a54d258533ca7",
    "1:ws_price_change_burst_captured_nautilus.json:49": "1a413c5643364ee4",
    "1:ws_price_change_burst_captured_nautilus.json:5": "155299b8d9d8064a",
    "1:ws_price_change_burst_captured_nautilus.json:50": "72ea1995e79076ed",
    "1:ws_price_change_burst_captured_nautilus.json:6": "c7e227719d8f0d34",
    "1:ws_price_change_burst_captured_nautilus.json:7": "6b45e509d07aabe7",
    "1:ws_price_change_burst_captured_nautilus.json:8": "6c42737f2842063c",
    "1:ws_price_change_burst_captured_nautilus.json:9": "9f9003928cd00c1f",
    "1:ws_price_change_burst_captured_nautilus.json:array": "aa08b57e9bb9d430",
    "1:ws_price_change_burst_captured_nautilus.json:as-stored": "1ad92ae654379950",
    "1:ws_price_change_legacy_flat_2024_nautilus.json:0": "e2fb7459825e5906",
    "1:ws_price_change_legacy_flat_2024_nautilus.json:as-stored": "0254a458d21ceeac",
    "1:ws_tick_size_change_2025_nautilus.json:0": "334d723c2ed2b7e0",
    "1:ws_tick_size_change_2025_nautilus.json:as-stored": "97581dc3b0b5fba2",
}
