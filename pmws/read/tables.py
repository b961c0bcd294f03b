"""The tables `pmws books` writes: their Arrow schemas (column order = the order of a row tuple).

Prices and sizes are `decimal128(38, 18)` (exact, cast from the feed's strings), times UTC timestamps (ns for
receive times, ms for the exchange's). See README, "Order books as Parquet".
"""

from __future__ import annotations

import pyarrow as pa

from pmws.read.parquet import DECIMAL, MS, NS

STR = pa.string()
SCHEMAS: dict[str, pa.Schema] = {
    "book_changes": pa.schema(
        [
            ("received_at", NS),
            ("exchange_ts", MS),
            ("token_id", STR),
            ("market", STR),
            ("side", STR),  # bid | ask
            ("price", DECIMAL),
            ("size", DECIMAL),  # the level's new aggregate size; 0 removes it
            ("is_snapshot", pa.bool_()),  # a `book` (or REST resync) replaced every level
            ("hash_status", STR),
            ("source", STR),  # ws | rest
            ("session_id", STR),
        ]
    ),
    "trades": pa.schema(
        [
            ("received_at", NS),
            ("exchange_ts", MS),
            ("token_id", STR),
            ("market", STR),
            ("side", STR),
            ("price", DECIMAL),
            ("size", DECIMAL),
            ("fee_rate_bps", STR),
            ("session_id", STR),
        ]
    ),
    "top_of_book": pa.schema(
        [
            ("received_at", NS),
            ("exchange_ts", MS),
            ("token_id", STR),
            ("best_bid", DECIMAL),
            ("best_bid_size", DECIMAL),
            ("best_ask", DECIMAL),
            ("best_ask_size", DECIMAL),
            ("mid", DECIMAL),
            ("spread", DECIMAL),
            ("hash_status", STR),
        ]
    ),
    "book_snapshots": pa.schema(
        [
            ("snapshot_at", NS),
            ("token_id", STR),
            ("side", STR),
            ("level", pa.int32()),  # 0 = best
            ("price", DECIMAL),
            ("size", DECIMAL),
            ("hash_status", STR),  # of the last change before the snapshot
            ("exchange_ts", MS),
        ]
    ),
    "gaps": pa.schema(
        [
            ("end_at", NS),
            ("start_at", NS),
            ("cause", STR),
            ("token_id", STR),
            ("session_id", STR),
            ("shard", STR),
            ("source", STR),
            ("details", STR),  # the gap record as JSON
        ]
    ),
}
TOKENS_SCHEMA = pa.schema(
    [
        ("token_id", STR),
        ("market_slug", STR),
        ("condition_id", STR),
        ("outcome", STR),
        ("window", STR),  # 5m, 15m, 1h, 4h … from the slug
        ("end_time", STR),
        ("first_seen", NS),
        ("last_seen", NS),
    ]
)


def column(table: str, name: str) -> int:
    """Position of column `name` in a `table` row."""
    return int(SCHEMAS[table].names.index(name))


STATUS_COLUMN = {name: column(name, "hash_status") for name, s in SCHEMAS.items() if "hash_status" in s.names}
TOKEN_COLUMN = {name: column(name, "token_id") for name in SCHEMAS}
