"""`pmws books` over a fixed recorded archive gives exactly the pinned tables (every row, every value).

The archive (tests/data/README.md) holds two replicas with dropped connections, REST checkpoints and
rotations: replica merge, superseded events, gaps, hash statuses, snapshots and the token filter all
show in the digests below. A change that alters any output row changes a digest.
"""

from __future__ import annotations

import gc
import hashlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pmws.books import build_books
from pmws.read import Filters, open_archives
from pmws.read.parquet import PartitionedParquet

ARCHIVE = Path(__file__).resolve().parents[1] / "data" / "books_archive"
TABLES = ("book_changes", "trades", "top_of_book", "book_snapshots", "gaps", "tokens")


def digest_of(root: Path, name: str) -> tuple[int, str]:
    """Row count and sha256 of the table: file layout, schema, every row in file order (times as ints)."""
    files = sorted(p.relative_to(root / name).as_posix() for p in (root / name).rglob("*.parquet"))
    text = [*files]
    for file in files:
        data = pq.read_table(root / name / file)
        text.append(str(data.schema))
        for index, column in enumerate(data.schema):
            if pa.types.is_timestamp(column.type):
                data = data.set_column(index, column.name, data.column(index).cast(pa.int64()))
        text += (repr(tuple(row.values())) for row in data.to_pylist())
    rows = len(text) - 2 * len(files)
    joined = "\n".join(text).replace(str(ARCHIVE), "ARCHIVE")  # gaps name their file
    return rows, hashlib.sha256(joined.encode()).hexdigest()[:16]


def build(tmp_path: Path, filters: Filters) -> dict[str, Any]:
    reader = open_archives(
        [ARCHIVE / "rec-a", ARCHIVE / "rec-b"],
        filters=filters,
        manifest_dirs=[ARCHIVE / "rec-a-manifests", ARCHIVE / "rec-b-manifests"],
    )
    result = build_books(reader, tmp_path / "books", snapshot_interval_seconds=1)
    summary: dict[str, Any] = {t: digest_of(tmp_path / "books", t) for t in TABLES}
    summary["hashes"] = result.hashes["hash"]
    summary["counts"] = (result.divergences, result.superseded, result.bad_values, result.files)
    summary["report"] = result.report.summary()
    return summary


TOKEN = "533832559964672831362730096411668767116583349826526168360498197853112129640857"
PINNED: dict[str, dict[str, Any]] = {
    "all": {
        "book_changes": (965, "2e63abe47ace301e"),
        "trades": (15, "a6a633ba8cd81024"),
        "top_of_book": (139, "b11c9a1213637f8a"),
        "book_snapshots": (200, "3df976c55bd0fdd1"),
        "gaps": (6, "676ab3a5c775c5c6"),  # 2 disconnects, 4 divergences while the feed froze
        "tokens": (4, "db2da6fafb0dba88"),  # ordered by first_seen, then token_id
        "hashes": {
            "verified": 253,
            "mismatched": 8,
            "pending": 0,
            "resolved_late": 0,
            "unverifiable": 0,
            "resyncs": 6,
        },
        "counts": (4, 0, 0, 6),
        "report": "20/20 files, 411 lines, 353 frames, 161 replica duplicates, 2 gaps",
    },
    "one_token": {
        "book_changes": (192, "ee37c749a212553f"),
        "trades": (0, "e3b0c44298fc1c14"),
        "top_of_book": (28, "02a5b0fe6d5a55f0"),
        "book_snapshots": (55, "000300293661bafb"),
        "gaps": (3, "2f9f030fc380a105"),
        "tokens": (1, "5a3a3afc29362172"),
        "hashes": {
            "verified": 100,
            "mismatched": 44,
            "pending": 0,
            "resolved_late": 0,
            "unverifiable": 0,
            "resyncs": 11,
        },
        "counts": (7, 0, 0, 5),
        "report": "20/20 files, 411 lines, 353 frames, 161 replica duplicates, 2 gaps",
    },
}


@pytest.mark.parametrize("case", ["all", "one_token"])
def test_books_over_the_fixed_archive_gives_the_pinned_tables(tmp_path: Path, case: str) -> None:
    filters = Filters(tokens=frozenset({TOKEN})) if case == "one_token" else Filters()
    assert build(tmp_path, filters) == PINNED[case]


def test_the_collector_runs_less_often_while_building_and_as_before_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    during: list[tuple[int, int, int]] = []
    close = PartitionedParquet.close
    monkeypatch.setattr(
        PartitionedParquet, "close", lambda self: (during.append(gc.get_threshold()), close(self))
    )
    reader = open_archives([ARCHIVE / "rec-a"], manifest_dirs=[ARCHIVE / "rec-a-manifests"])
    before = gc.get_threshold()
    build_books(reader, tmp_path / "books")
    assert during[0] == (before[0] * 100, *before[1:])  # the tables' writer; the tokens file is after
    assert gc.get_threshold() == before
