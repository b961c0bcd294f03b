"""`pmws books` with the tokens shared between worker processes writes exactly the rows one process writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pmws import books
from pmws.books import auto_workers, build_books
from pmws.errors import ArchiveError
from pmws.read import Filters, Reader, Record, open_archives
from tests.conftest import TIME_FACTOR

ARCHIVE = Path(__file__).resolve().parents[1] / "data" / "books_archive"
TABLES = ("book_changes", "trades", "top_of_book", "book_snapshots", "gaps", "tokens")


def reader(filters: Filters | None = None) -> Reader:
    return open_archives(
        [ARCHIVE / "rec-a", ARCHIVE / "rec-b"],
        filters=filters,
        manifest_dirs=[ARCHIVE / "rec-a-manifests", ARCHIVE / "rec-b-manifests"],
    )


def tables(root: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, files in name order, rows in file order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in TABLES:
        rows: list[dict[str, Any]] = []
        for path in sorted((root / name).rglob("*.parquet")):
            data = pq.read_table(path)
            for index, column in enumerate(data.schema):
                if pa.types.is_timestamp(column.type):  # ns times as ints (datetime has µs)
                    data = data.set_column(index, column.name, data.column(index).cast(pa.int64()))
            rows += data.to_pylist()
        out[name] = rows
    return out


def by_token(rows: list[dict[str, Any]]) -> dict[Any, list[dict[str, Any]]]:
    grouped: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row.get("token_id")].append(row)
    return dict(grouped)


@pytest.mark.parametrize(
    "filters",
    [
        Filters(),
        Filters(
            tokens=frozenset(
                {"533832559964672831362730096411668767116583349826526168360498197853112129640857"}
            )
        ),
    ],
)
def test_two_workers_write_every_row_of_one_process_once_in_the_same_order_per_token(
    tmp_path: Path, filters: Filters
) -> None:
    one = build_books(reader(filters), tmp_path / "one", snapshot_interval_seconds=1)
    two = build_books(reader(filters), tmp_path / "two", snapshot_interval_seconds=1, workers=2)

    expected, got = tables(tmp_path / "one"), tables(tmp_path / "two")
    assert sum(len(rows) for rows in expected.values()) > 200
    for name in TABLES:
        assert by_token(got[name]) == by_token(expected[name]), name  # each token's rows, in order
    assert got["tokens"] == expected["tokens"]  # first seen first, as one process writes them
    assert (two.rows, two.hashes, two.divergences, two.superseded, two.bad_values) == (
        one.rows,
        one.hashes,
        one.divergences,
        one.superseded,
        one.bad_values,
    )
    assert two.report.summary() == one.report.summary()
    written = {p.name for p in (tmp_path / "two" / "book_changes").rglob("*.parquet")}
    if filters == Filters():  # both workers had tokens, each in files of its own
        assert {n.split(".")[0].rsplit("-", 1)[1] for n in written} == {"w0", "w1"}
    assert two.files == len(list((tmp_path / "two").rglob("*.parquet")))


@dataclass
class DyingReader(Reader):
    """Ends its process while reading, as an out-of-memory kill would."""

    def __iter__(self) -> Iterator[Record]:
        os._exit(3)


@dataclass
class FailingReader(Reader):
    def __iter__(self) -> Iterator[Record]:
        raise ArchiveError("/data/books: cannot write (No space left on device)")


def test_a_worker_that_dies_fails_the_build_naming_it(tmp_path: Path) -> None:
    source = reader()
    dying = DyingReader(source.files, lines=source.lines)
    with pytest.raises(ArchiveError, match=r"worker \d of 2 died \(exit code 3\)"):
        build_books(dying, tmp_path / "out", workers=2)


def test_a_worker_error_is_raised_as_it_was(tmp_path: Path) -> None:
    source = reader()
    failing = FailingReader(source.files, lines=source.lines)
    with pytest.raises(ArchiveError, match="No space left on device"):
        build_books(failing, tmp_path / "out", workers=2)


def test_auto_workers_one_per_core_up_to_four_for_large_local_input(monkeypatch: pytest.MonkeyPatch) -> None:
    local = reader()
    assert auto_workers(local, 3) == 3  # as set
    assert auto_workers(local, 0) == 1  # the fixture is far below 32 MB
    monkeypatch.setattr(books, "AUTO_WORKERS_MIN_BYTES", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert auto_workers(local, 0) == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert auto_workers(local, 0) == 4
    remote = Reader(local.files, lines=lambda *_: iter(()))  # not the local files: an rclone remote
    assert auto_workers(remote, 0) == 1


def test_ctrl_c_stops_the_workers_quietly(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: the parent stops; the workers end without a traceback."""
    script = tmp_path / "books.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from pmws.books import build_books\n"
        "from pmws.read import open_archives\n"
        "from tests.unit.test_books_workers import SlowReader\n"
        "if __name__ == '__main__':\n"
        "    source = open_archives(sys.argv[1])\n"
        "    build_books(SlowReader(source.files, lines=source.lines), Path(sys.argv[2]), workers=2)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "PMWS_TEST_MARK": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(ARCHIVE / "rec-a"), str(tmp_path / "out")],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30 * TIME_FACTOR
    while len(list(tmp_path.glob("started-*"))) < 2 and time.monotonic() < deadline:  # both reading
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=30 * TIME_FACTOR)
    assert proc.returncode != 0
    assert stderr.count("Traceback") == 1, stderr  # the parent's KeyboardInterrupt, none from the workers
    assert "KeyboardInterrupt" in stderr


@dataclass
class SlowReader(Reader):
    """Marks that it started, then reads slowly (a long build to interrupt)."""

    def __iter__(self) -> Iterator[Record]:
        Path(os.environ.get("PMWS_TEST_MARK", "/tmp"), f"started-{os.getpid()}").touch()
        for record in super().__iter__():
            time.sleep(0.5)
            yield record
