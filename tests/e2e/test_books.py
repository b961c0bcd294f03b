"""`pmws books` and `pmws.read` over archives `pmws run` recorded from the simulator: verified books as
Parquet, gaps where the connection dropped, two replicas merged, damaged input named, the README query."""

from __future__ import annotations

import asyncio
import gzip
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pmws.config import load_config
from pmws.read import Filters, open_archives
from pmws.run import RunOutcome, run_recorder
from tests.conftest import TIME_FACTOR, no_traceback
from tests.e2e.conftest import invoke, write_config
from tests.e2e.test_run import MANIFESTS, ROOT, record, run_config

README = Path(__file__).resolve().parents[2] / "README.md"


def table(name: str, root: Path = Path("books")) -> list[dict[str, Any]]:
    """Rows of one output table, times as epoch integers (datetime has no nanoseconds)."""
    if not (root / name).exists():
        return []
    data = pq.read_table(root / name, partitioning="hive")
    for index, column in enumerate(data.schema):
        if pa.types.is_timestamp(column.type):
            data = data.set_column(index, column.name, data.column(index).cast(pa.int64()))
    return data.to_pylist()


def rest_books(sim: Any, tokens: list[str]) -> dict[str, dict[str, Any]]:
    body = [{"token_id": t} for t in tokens]
    return {b["asset_id"]: b for b in httpx.post(sim.clob_url + "/books", json=body).json()}


def test_books_rebuilds_verified_books_with_gaps_as_parquet(tmp_path: Path, sim: Any) -> None:
    sim.sim.faults.drop_after_frames = 60  # connections drop (no close frame) and reconnect: gaps
    outcome, _ = record(run_config(tmp_path, sim, run={"rotate_interval_seconds": 1}), 4.0, sim=sim)
    assert outcome.error is None and outcome.counters["reconnects"] >= 1

    result = invoke("books", str(ROOT), "-o", "books", "--snapshot-interval", "1")
    assert result.exit_code == 0, result.output
    assert "mismatched" in result.output

    changes = table("book_changes")
    statuses = {row["hash_status"] for row in changes}
    assert statuses <= {"verified", "unverified"} and "verified" in statuses
    # one verified price_change row per verified entry hash, plus the levels of each verified book
    verified_entries = sum(1 for r in changes if r["hash_status"] == "verified" and not r["is_snapshot"])
    books = {(r["token_id"], r["received_at"]) for r in changes if r["is_snapshot"] and r["source"] == "ws"}
    assert verified_entries + len(books) == outcome.counters["book_hash_verified"]
    assert all(str(r["price"]).startswith("0.") for r in changes if r["price"] is not None)

    tokens = {r["token_id"]: r for r in table("tokens")}
    assert tokens and {r["window"] for r in tokens.values()} <= {"5m", "15m"}
    top = table("top_of_book")
    final = {r["token_id"]: r for r in sorted(top, key=lambda r: r["received_at"])}
    rest = rest_books(sim, list(final))  # the simulator is silent at the end: REST holds the last state
    for token, row in final.items():
        bids = rest[token]["bids"]
        assert row["best_bid"] == max((Decimal(b["price"]) for b in bids), default=None)
        assert row["mid"] == (row["best_bid"] + row["best_ask"]) / 2
    assert table("trades") and table("book_snapshots")

    gaps = table("gaps")
    assert any(g["cause"].startswith("disconnect") for g in gaps)
    assert all(g["start_at"] <= g["end_at"] for g in gaps)


def test_the_readme_duckdb_query_runs_over_the_output(tmp_path: Path, sim: Any) -> None:
    record(run_config(tmp_path, sim), 3.0, sim=sim)
    assert invoke("books", str(ROOT)).exit_code == 0  # the default books.output_dir, as in the README
    sql = README.read_text().split("<!-- books-query -->")[1].split("```sql")[1].split("```")[0]
    up = next(r for r in table("tokens", Path("data/books")) if r["outcome"] == "Up")
    rows = duckdb.sql(sql.replace("btc-updown-5m-1796094900", up["market_slug"])).fetchall()
    assert len(rows) >= 2 and all(0 < mid < 1 for _, mid in rows)
    assert [second for second, _ in rows] == sorted({second for second, _ in rows})


def test_two_replicas_merge_once_and_still_verify(tmp_path: Path, sim: Any) -> None:
    """Two recorders of one shard on one simulator: their frames merge, no change is applied twice."""

    async def both() -> list[RunOutcome]:
        stop = asyncio.Event()
        configs = []
        for name in ("a", "b"):
            paths = {"output_dir": f"rec-{name}", "manifest_dir": f"rec-{name}-manifests"}
            path = run_config(tmp_path, sim, run=paths)
            configs.append(load_config(path.rename(tmp_path / f"{name}.yaml"), env={}))
        loop = asyncio.get_running_loop()
        loop.call_later(3 * TIME_FACTOR - 0.5, lambda: setattr(sim.sim.faults, "silent", True))
        loop.call_later(3 * TIME_FACTOR, stop.set)
        runs = [run_recorder(c, stop=stop) for c in configs]
        return list(await asyncio.gather(*runs))

    outcomes = asyncio.run(both())
    assert all(o.error is None for o in outcomes)
    reader = open_archives(["rec-a", "rec-b"], filters=Filters(record_types=frozenset({"ws_frame"})))
    frames = [r for r in reader if r.row.get("classified_event_types")]
    both_saw = [r for r in frames if len(r.seen_by) == 2]
    assert reader.report.duplicates == len(both_saw) > 0
    assert {len(set(r.seen_by)) for r in frames} <= {1, 2}

    result = invoke("books", "rec-a", "rec-b", "-o", "books")
    assert result.exit_code == 0, result.output
    assert "0 mismatched" in result.output and "0 pending" in result.output
    assert "replica duplicates" in result.output


def test_damaged_inputs_exit_1_naming_each_and_the_rest_is_written(tmp_path: Path, sim: Any) -> None:
    record(run_config(tmp_path, sim, run={"rotate_interval_seconds": 1}), 3.0, sim=sim)
    files = sorted((ROOT / "ws_raw").rglob("*.jsonl.gz"))
    assert len(files) >= 3
    files[0].write_bytes(b"not gzip at all")
    files[1].write_bytes(files[1].read_bytes()[:-20])  # a cut hour
    with gzip.open(files[2], "ab") as fh:
        fh.write(b"{oops\n")
    orphan = files[-1].with_name("polymarket_ws_raw_20260101T000000Z-abcdef_20260101T00.jsonl.gz")
    shutil.copy(files[-1], orphan)  # an archive without a manifest
    result = invoke("books", str(ROOT), "--manifest-dir", str(MANIFESTS), "-o", "books")
    assert result.exit_code == 1, result.output
    for path, reason in (
        (files[0], "corrupt gzip"),
        (files[1], "truncated"),
        (files[2], "not a JSON record"),
        (orphan, "no manifest"),
    ):
        assert any(path.name in line and reason in line for line in result.output.splitlines()), reason
    assert table("book_changes")  # the rest was read and written
    assert "problem(s)" in result.output


@pytest.mark.parametrize("bad", [["--start", "yesterday"], ["nowhere"]])
def test_bad_arguments_are_one_clear_line(bad: list[str]) -> None:
    result = invoke("books", *bad, "-o", "books")
    assert result.exit_code in (1, 2)
    assert "Traceback" not in result.output


def test_an_rclone_remote_is_read_streamed_and_an_unreachable_one_is_named(tmp_path: Path, sim: Any) -> None:
    record(run_config(tmp_path, sim, run={"rotate_interval_seconds": 1}), 3.0, sim=sim)
    assert invoke("books", str(ROOT), "-o", "local").exit_code == 0
    remote = f":local:{(tmp_path / ROOT).resolve()}"  # rclone's local backend, through `rclone cat`
    result = invoke("books", remote, "--manifest-dir", str(MANIFESTS), "-o", "remote")
    assert result.exit_code == 0, result.output
    for name in ("book_changes", "trades", "top_of_book", "tokens"):
        assert table(name, Path("remote")) == table(name, Path("local")), name
    result = invoke("books", str(ROOT), "nosuchremote:bucket/polymarket", "-o", "more")
    assert result.exit_code == 1
    assert "nosuchremote:bucket/polymarket: cannot list the remote" in result.output
    assert table("book_changes", Path("more")) == table("book_changes", Path("local"))


def test_books_reads_sample_outputs(tmp_path: Path, sim: Any) -> None:
    config = write_config(tmp_path / "sample.yaml", sim)
    assert invoke("sample", "--config", str(config), "--discover", "--no-live").exit_code == 0
    result = invoke("books", "data/ws_sample/polymarket", "-o", "books")
    assert result.exit_code == 0, result.output
    assert "0 mismatched" in result.output
    changes = table("book_changes")
    assert changes and {r["hash_status"] for r in changes} == {"verified"}
    assert {r["session_id"] for r in changes} == {
        p.name for p in Path("data/ws_sample/polymarket/ws_raw").iterdir()
    }


def test_an_empty_directory_is_an_error_not_an_empty_output(tmp_path: Path) -> None:
    Path("empty").mkdir()
    result = invoke("books", "empty", "-o", "books")
    assert result.exit_code == 1
    assert "no archives (*.jsonl.gz) under empty" in result.output


def test_token_and_slug_filters_keep_only_those_tokens_rows(tmp_path: Path, sim: Any) -> None:
    record(run_config(tmp_path, sim), 3.0, sim=sim)
    assert invoke("books", str(ROOT), "-o", "all").exit_code == 0
    tokens = table("tokens", Path("all"))
    up = next(r for r in tokens if r["outcome"] == "Up")
    assert invoke("books", str(ROOT), "--token", up["token_id"], "-o", "one").exit_code == 0
    assert [r["token_id"] for r in table("tokens", Path("one"))] == [up["token_id"]]
    one = table("book_changes", Path("one"))
    assert one and {r["token_id"] for r in one} == {up["token_id"]}
    assert one == [r for r in table("book_changes", Path("all")) if r["token_id"] == up["token_id"]]
    assert invoke("books", str(ROOT), "--slug", up["market_slug"], "-o", "slug").exit_code == 0
    market = {r["token_id"] for r in tokens if r["market_slug"] == up["market_slug"]}
    assert {r["token_id"] for r in table("top_of_book", Path("slug"))} == market


def test_nothing_to_read_leaves_existing_tables_untouched_even_with_overwrite(
    tmp_path: Path, sim: Any
) -> None:
    """A mistyped path, an unreachable remote or a window no archive covers: an error, and the tables a
    previous run wrote stay (`--overwrite` replaces tables only with new ones)."""
    record(run_config(tmp_path, sim, run={"rotate_interval_seconds": 1}), 2.0, sim=sim)
    assert invoke("books", str(ROOT), "-o", "kept").exit_code == 0
    before = table("book_changes", Path("kept"))
    assert before
    for args in (
        ["nowhere"],
        ["nosuchremote:bucket/polymarket"],
        [str(ROOT), "--end", "2020-01-01T00:00:00Z"],
        [str(ROOT), "--start", "2030-01-01T00:00:00Z"],
    ):
        result = invoke("books", *args, "-o", "kept", "--overwrite")
        assert result.exit_code == 1, (args, result.output)
        assert "no archive" in result.output and no_traceback(result), result.output
        assert table("book_changes", Path("kept")) == before, args
    reversed_window = invoke("books", str(ROOT), "-o", "kept", "--start", "2030-01-01", "--end", "2020-01-01")
    assert reversed_window.exit_code == 2 and "--start must be before --end" in reversed_window.output
