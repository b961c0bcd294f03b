"""Rows → Parquet files partitioned `<table>/date=YYYY-MM-DD/hour=HH/part-NNNNN.parquet` (pyarrow).

Rows are tuples in the table's column order; prices and sizes arrive as the exact strings of the feed and
are stored as `decimal128(38, 18)` (cast by Arrow, which refuses to round: a value that does not fit is
stored as null and counted in `bad_values`), never as floats. Times arrive as epoch ns / ms integers.
Memory is bounded: rows are converted and appended to their partition's open file every `batch_rows`.
Encoding, compression and writing happen on one background thread (pyarrow releases the GIL there, so a
second core does it while the caller goes on); at most `MAX_PENDING` batches wait for it.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pmws.errors import ArchiveError

DECIMAL = pa.decimal128(38, 18)
NS = pa.timestamp("ns", tz="UTC")
MS = pa.timestamp("ms", tz="UTC")
HOUR_NS = 3600 * 1_000_000_000
MAX_PENDING = 4


def partition_of(ns: int) -> tuple[int, str]:
    hour = ns // HOUR_NS
    return hour, f"date={datetime.fromtimestamp(hour * 3600, tz=UTC):%Y-%m-%d/hour=%H}"


class PartitionedParquet:
    """Streaming writer of several tables, each partitioned by the hour of its first column's time.

    One file per table and hour (`part-00000.parquet`; a partition reopened after it was closed gets the
    next number). Rows are converted to Arrow every `batch_rows` rows and appended to the partition's open
    file; a partition's file is closed once the stream is two hours past it.
    """

    def __init__(
        self, root: Path, schemas: dict[str, pa.Schema], *, batch_rows: int = 16_384, file_tag: str = ""
    ) -> None:
        self.root = root
        self.file_tag = file_tag  # in every file name: parallel writers into one directory never collide
        self.schemas = schemas
        self.batch_rows = batch_rows
        self.buffers: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
        self.writers: dict[tuple[str, int], pq.ParquetWriter] = {}
        self.parts: dict[tuple[str, int], int] = {}
        self.rows: dict[str, int] = dict.fromkeys(schemas, 0)
        self.files: list[Path] = []
        self.bad_values = 0
        self._newest = 0
        self._io = ThreadPoolExecutor(1, thread_name_prefix="pmws-parquet")  # one: a file's writes in order
        self._pending: deque[Future[None]] = deque()

    def add(self, table: str, hour: int, row: tuple[Any, ...]) -> None:
        key = (table, hour)
        buffer = self.buffers.get(key)
        if buffer is None:
            buffer = self.buffers[key] = []
            if hour > self._newest:
                self._newest = hour
                self._close_older_than(hour - 1)
        buffer.append(row)
        if len(buffer) >= self.batch_rows:
            self._flush(key)

    def hour_of(self, ns: int) -> int:
        return ns // HOUR_NS

    def close(self) -> None:
        try:
            for key in list(self.buffers):
                self._flush(key)
            for key in list(self.writers):
                self._close(key)
            self._wait(0)
        finally:
            self._io.shutdown(wait=True)

    def _close_older_than(self, hour: int) -> None:
        for key in [k for k in (*self.buffers, *self.writers) if k[1] < hour]:
            self._flush(key)
            self._close(key)

    def _flush(self, key: tuple[str, int]) -> None:
        rows = self.buffers.pop(key, None)
        if not rows:
            return
        table, hour = key
        schema = self.schemas[table]
        writer = self.writers.get(key)
        if writer is None:
            part = self.parts.get(key, 0)
            self.parts[key] = part + 1
            name = f"part-{part:05d}{self.file_tag}.parquet"
            path = self.root / table / partition_of(hour * HOUR_NS)[1] / name
            writer = self.writers[key] = self._open(path, schema)
        self._submit(writer.write_batch, self._batch(schema, rows), table)
        self.rows[table] += len(rows)

    def _close(self, key: tuple[str, int]) -> None:
        writer = self.writers.pop(key, None)
        if writer is not None:
            self._submit(writer.close, None, key[0])

    def _submit(self, call: Any, batch: pa.RecordBatch | None, table: str) -> None:
        """Run `call(batch)` (or `call()`) on the writing thread; raise here what an earlier one raised."""
        path = self.root / table

        def run() -> None:
            try:
                call() if batch is None else call(batch)
            except OSError as exc:
                raise ArchiveError(f"{path}: cannot write ({exc.strerror or exc})") from exc

        self._pending.append(self._io.submit(run))
        self._wait(MAX_PENDING)

    def _wait(self, pending: int) -> None:
        while len(self._pending) > pending:
            self._pending.popleft().result()

    def _open(self, path: Path, schema: pa.Schema) -> pq.ParquetWriter:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = pq.ParquetWriter(path, schema, compression="zstd")
        except OSError as exc:
            raise ArchiveError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        self.files.append(path)
        return writer

    def write_table(self, path: Path, schema: pa.Schema, rows: list[tuple[Any, ...]]) -> None:
        """One whole Parquet file of these rows (an unpartitioned table)."""
        writer = self._open(path, schema)
        try:
            writer.write_batch(self._batch(schema, rows))
            writer.close()
        except OSError as exc:
            raise ArchiveError(f"{path}: cannot write ({exc.strerror or exc})") from exc

    def _batch(self, schema: pa.Schema, rows: list[tuple[Any, ...]]) -> pa.RecordBatch:
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
        pairs = zip(columns, schema, strict=True)
        return pa.RecordBatch.from_arrays([self._array(v, c.type) for v, c in pairs], schema=schema)

    def _array(self, values: tuple[Any, ...], kind: pa.DataType) -> pa.Array:
        if kind == DECIMAL:
            try:
                text = pa.array(values, pa.string())
                if _within_decimal(text):
                    return text.cast(DECIMAL)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                pass  # not all text (a number in the JSON), or a value the cast refuses: one by one
            return pa.array([self._decimal(v) for v in values], DECIMAL)
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


def _within_decimal(text: pa.Array) -> bool:
    """Every value below 10^20 in magnitude? Arrow's string → decimal128(38, 18) cast wraps values of 24 to
    39 integer digits silently instead of failing (pyarrow 26): larger ones go one by one (counted as bad)."""
    largest = pc.max(pc.abs(text.cast(pa.float64()))).as_py()
    return largest is None or largest < 1e20
