"""PartitionedParquet: a write that fails on the writing thread is raised in the caller, naming the table."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pmws.read.parquet as parquet
from pmws.errors import ArchiveError
from pmws.read.parquet import PartitionedParquet

SCHEMA = {"t": pa.schema([("at", parquet.NS), ("price", parquet.DECIMAL)])}


class FullDisk:
    def __init__(self, path: Path, schema: pa.Schema, **_: Any) -> None:
        path.touch()

    def write_batch(self, batch: pa.RecordBatch) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self) -> None:
        pass


def test_a_failed_background_write_is_an_archive_error_naming_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet.pq, "ParquetWriter", FullDisk)
    sink = PartitionedParquet(tmp_path, SCHEMA, batch_rows=2)
    with pytest.raises(ArchiveError, match=r"/t: cannot write \(No space left on device\)"):
        for n in range(10):
            sink.add("t", 0, (n, "0.5"))
        sink.close()


def test_rows_are_written_in_order_with_exact_decimals(tmp_path: Path) -> None:
    sink = PartitionedParquet(tmp_path, SCHEMA, batch_rows=3)
    for n in range(10):
        sink.add("t", 0, (n, f"0.{n}1"))
    sink.close()
    data = pq.read_table(tmp_path / "t", columns=["price"]).to_pydict()
    assert [str(p) for p in data["price"]] == [f"0.{n}1" + "0" * 16 for n in range(10)]
    assert sink.rows == {"t": 10} and len(sink.files) == 1


def test_a_value_too_large_for_the_decimal_is_null_and_counted_never_wrapped_and_numbers_are_kept(
    tmp_path: Path,
) -> None:
    """Arrow's string cast wraps 24 to 39 integer digits into a wrong value without an error (pyarrow 26)."""
    sink = PartitionedParquet(tmp_path, SCHEMA, batch_rows=100)
    values: list[Any] = ["0.5", "9" * 30, "9" * 39, "1" * 21, "0.0000000000000000001", 0.25, 3, None]
    for n, value in enumerate(values):
        sink.add("t", 0, (n, value))
    sink.close()
    prices = [
        None if p is None else str(p)
        for p in pq.read_table(tmp_path / "t", columns=["price"]).to_pydict()["price"]
    ]
    assert prices == ["0.5" + "0" * 17, None, None, None, None, "0.25" + "0" * 16, "3." + "0" * 18, None]
    assert sink.bad_values == 4  # the null of a missing value is not a bad one
