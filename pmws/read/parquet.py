"""Rows → Parquet files partitioned `<table>/date=YYYY-MM-DD/hour=HH/part-NNNNN.parquet` (pyarrow).

Rows are tuples in the table's column order; prices and sizes arrive as the exact strings of the feed and
are stored as `decimal128(38, 18)` (cast by Arrow, which refuses to round: a value that does not fit is
stored as null and counted in `bad_values`), never as floats. Times arrive as epoch ns / ms integers.
Memory is bounded: a partition's rows are written once `rows_per_file` are buffered, and partitions more
than an hour older than the newest are written out as the stream moves on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pmws.errors import ArchiveError

DECIMAL = pa.decimal128(38, 18)
NS = pa.timestamp("ns", tz="UTC")
MS = pa.timestamp("ms", tz="UTC")
HOUR_NS = 3600 * 1_000_000_000


def partition_of(ns: int) -> tuple[int, str]:
    hour = ns // HOUR_NS
    return hour, f"date={datetime.fromtimestamp(hour * 3600, tz=UTC):%Y-%m-%d/hour=%H}"


class PartitionedParquet:
    """Buffered writer of several tables, each partitioned by the hour of its first column's time."""

    def __init__(self, root: Path, schemas: dict[str, pa.Schema], *, rows_per_file: int = 100_000) -> None:
        self.root = root
        self.schemas = schemas
        self.rows_per_file = rows_per_file
        self.buffers: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
        self.parts: dict[tuple[str, int], int] = {}
        self.rows: dict[str, int] = dict.fromkeys(schemas, 0)
        self.files: list[Path] = []
        self.bad_values = 0
        self._newest = 0
        self._names: dict[int, str] = {}

    def add(self, table: str, hour: int, row: tuple[Any, ...]) -> None:
        key = (table, hour)
        buffer = self.buffers.get(key)
        if buffer is None:
            buffer = self.buffers[key] = []
            if hour > self._newest:
                self._newest = hour
                self._write_older_than(hour - 1)
        buffer.append(row)
        if len(buffer) >= self.rows_per_file:
            self._write(key)

    def hour_of(self, ns: int) -> int:
        return ns // HOUR_NS

    def close(self) -> None:
        for key in list(self.buffers):
            self._write(key)

    def _write_older_than(self, hour: int) -> None:
        for key in [k for k in self.buffers if k[1] < hour]:
            self._write(key)

    def _write(self, key: tuple[str, int]) -> None:
        rows = self.buffers.pop(key, None)
        if not rows:
            return
        table, hour = key
        name = self._names.get(hour) or self._names.setdefault(hour, partition_of(hour * HOUR_NS)[1])
        part = self.parts.get(key, 0)
        self.parts[key] = part + 1
        path = self.root / table / name / f"part-{part:05d}.parquet"
        self.write_table(path, self.schemas[table], rows)
        self.rows[table] += len(rows)

    def write_table(self, path: Path, schema: pa.Schema, rows: list[tuple[Any, ...]]) -> None:
        """One Parquet file of these rows (also used for unpartitioned tables)."""
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
        arrays = [
            self._array(list(values), column.type) for values, column in zip(columns, schema, strict=True)
        ]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path, compression="zstd")
        except OSError as exc:
            raise ArchiveError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        self.files.append(path)

    def _array(self, values: list[Any], kind: pa.DataType) -> pa.Array:
        if kind == DECIMAL:
            try:
                return pa.array(values, pa.string()).cast(DECIMAL)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return pa.array([self._decimal(v) for v in values], DECIMAL)
        if kind in (NS, MS):
            return pa.array(values, pa.int64()).cast(kind)
        return pa.array(values, kind)

    def _decimal(self, value: Any) -> Decimal | None:
        if value is None:
            return None
        try:
            number = Decimal(str(value))
            pa.array([number], DECIMAL)  # fits 38 digits with 18 after the point, or raises
        except (InvalidOperation, pa.ArrowInvalid):
            self.bad_values += 1
            return None
        return number
