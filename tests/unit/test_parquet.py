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
