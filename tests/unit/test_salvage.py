"""Salvage that survives a kill at any step, streams in bounded memory, and manifest repair."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from pathlib import Path

import pytest
from zlib_ng import zlib_ng as zlib

from pmws.archive.digest import file_digest
from pmws.archive.reader import iter_gzip_lines
from pmws.archive.rotating import RotatingArchive
from pmws.archive.salvage import SALVAGE_STEPS, repair_manifests, salvage_orphans
from pmws.archive.writer import GzipJsonlFile
from pmws.config import Archive
from pmws.lock import acquire
from pmws.rotation import archive_name, manifest_path_for, session_of_name
from pmws.transfer.upload import find_candidates
from tests.conftest import TIME_FACTOR

SESSION = "20261201T000000Z-abcdef"


class Killed(BaseException):
    """Stands in for kill -9 between two salvage steps (not an error salvage could catch)."""


def make_orphan(
    root: Path, *, lines: int = 50, session: str = SESSION, junk: bool = False
) -> tuple[Path, list[bytes], bytes]:
    """A `.open` file cut as by kill -9: `lines` complete lines synced (one not JSON with `junk`), then half
    a line."""
    name = archive_name(root, "ws_raw", session, 1_790_000_000, 3600)
    writer = GzipJsonlFile(name.final, open_path=name.open)
    complete = [
        json.dumps({"record_type": "ws_frame", "global_message_sequence": n, "session_id": session}).encode()
        + b"\n"
        for n in range(1, lines + 1)
    ]
    if junk:
        complete[lines // 2] = b"\x00 not json \xff\n"
    writer.write_lines(complete, sync_flush=True)
    writer.write_lines([b'{"record_type": "ws_fr'], sync_flush=True)
    writer.abandon()
    return name.open, complete, name.open.read_bytes()


@pytest.mark.parametrize("junk", [False, True], ids=["json", "with-a-non-json-line"])
@pytest.mark.parametrize("killed_after", SALVAGE_STEPS)
def test_salvage_cut_after_any_step_is_finished_by_the_next_start(
    tmp_path: Path, killed_after: str, junk: bool
) -> None:
    root, manifests = tmp_path / "rec", tmp_path / "m"
    orphan, complete, orphan_bytes = make_orphan(root, junk=junk)

    def kill(step: str) -> None:
        if step == killed_after:
            raise Killed(step)

    with pytest.raises(Killed):
        salvage_orphans(root, manifest_dir=manifests, settings=Archive(), on_step=kill)
    again = salvage_orphans(root, manifest_dir=manifests, settings=Archive())
    assert again.problems == []

    finals = sorted(p.name for p in root.rglob("*.jsonl.gz"))
    assert finals == [orphan.name[1 : -len(".open")]]  # one copy, under its own name
    final = orphan.parent / finals[0]
    assert [line + b"\n" for line in iter_gzip_lines(final)] == complete
    manifest = json.loads(manifest_path_for(manifests, final).read_text())
    assert manifest["recovered"] is True and manifest["lines"] == len(complete)
    assert (manifest["sha256"], manifest["bytes"]) == file_digest(final)
    kept = orphan.with_name(orphan.name + ".salvaged")
    assert kept.read_bytes() == orphan_bytes and not orphan.exists()
    assert not list(root.rglob("*.salvage"))  # no temp left behind
    assert len(list(manifests.glob("*.manifest.json"))) == 1


def test_a_final_that_disagrees_with_its_orphan_is_reported_and_left_alone(tmp_path: Path) -> None:
    root, manifests = tmp_path / "rec", tmp_path / "m"
    orphan, _, orphan_bytes = make_orphan(root)
    final = orphan.with_name(orphan.name[1 : -len(".open")])
    writer = GzipJsonlFile(final)
    writer.write_lines([b'{"n": 1}\n'], sync_flush=False)
    writer.close()
    result = salvage_orphans(root, manifest_dir=manifests, settings=Archive())
    assert len(result.problems) == 1 and "cannot finish salvage" in result.problems[0]
    assert orphan.read_bytes() == orphan_bytes and not list(manifests.glob("*"))


def test_salvage_leaves_a_live_sessions_open_file_alone(tmp_path: Path) -> None:
    root, manifests = tmp_path / "rec", tmp_path / "m"
    orphan, _, orphan_bytes = make_orphan(root)
    with acquire([root], owner="run-shard-1of2", session_id=SESSION, command="test", session_root=root):
        result = salvage_orphans(root, manifest_dir=manifests, settings=Archive())
        assert result.live == [orphan] and result.salvaged == []
        assert orphan.read_bytes() == orphan_bytes and not list(root.rglob("*.jsonl.gz"))
    assert len(salvage_orphans(root, manifest_dir=manifests, settings=Archive()).salvaged) == 1


def write_big_orphan(path: Path, *, target_bytes: int) -> tuple[int, int]:
    """A cut gzip of repetitive-but-varied JSON lines; returns (lines, uncompressed bytes)."""
    deflate = zlib.compressobj(1, zlib.DEFLATED, 31)
    lines = size = 0
    with open(path, "wb") as fh:
        while size < target_bytes:
            block = b"".join(
                b'{"record_type":"ws_frame","global_message_sequence":%d,"raw_text":"%s"}\n'
                % (n, b"%x" % (n * 2654435761 % 2**32) * 12)
                for n in range(lines + 1, lines + 10_001)
            )
            lines += 10_000
            size += len(block)
            fh.write(deflate.compress(block))
        fh.write(deflate.flush(zlib.Z_SYNC_FLUSH))  # readable, but no trailer: as if killed
    return lines, size


def test_salvage_streams_a_large_orphan_in_bounded_memory(tmp_path: Path) -> None:
    root, manifests = tmp_path / "rec", tmp_path / "m"
    name = archive_name(root, "ws_raw", SESSION, 1_790_000_000, 3600)
    name.open.parent.mkdir(parents=True)
    lines, size = write_big_orphan(name.open, target_bytes=60_000_000)
    tracemalloc.start()
    try:
        result = salvage_orphans(root, manifest_dir=manifests, settings=Archive(compresslevel=1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.problems == [] and result.salvaged[0].lines == lines
    assert result.salvaged[0].uncompressed_bytes == size
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB salvaging {size / 1e6:.0f} MB"


def closed_archive(root: Path, session: str, lines: list[bytes]) -> Path:
    name = archive_name(root, "ws_raw", session, 1_790_000_000, 3600)
    writer = GzipJsonlFile(name.final, open_path=name.open)
    writer.write_lines(lines, sync_flush=False)
    return writer.close().path


def test_repair_writes_the_missing_manifest_of_a_valid_closed_archive(tmp_path: Path) -> None:
    root, manifests = tmp_path / "rec", tmp_path / "m"
    rows = [{"record_type": "ws_frame", "global_message_sequence": n, "session_id": SESSION} for n in (1, 2)]
    path = closed_archive(root, SESSION, [json.dumps(r).encode() + b"\n" for r in rows])
    result = repair_manifests(root, manifests)
    assert result.problems == [] and len(result.repaired) == 1
    manifest = json.loads(manifest_path_for(manifests, path).read_text())
    assert manifest["repaired"] is True and manifest["recovered"] is False
    assert (manifest["sha256"], manifest["bytes"]) == file_digest(path)
    assert manifest["frames"] == 2 and manifest["last_global_message_sequence"] == 2
    assert manifest["session_id"] == SESSION and manifest["kind"] == "ws_raw"
    assert repair_manifests(root, manifests).repaired == []  # idempotent


def test_repair_reports_a_damaged_archive_and_leaves_it_untouched(tmp_path: Path) -> None:
    root, manifests = tmp_path / "rec", tmp_path / "m"
    not_json = closed_archive(root, "20261201T000000Z-000001", [b'{"n": 1}\n', b"not json\n"])
    cut = closed_archive(root, "20261201T000000Z-000002", [b'{"n": 1}\n' * 100])
    cut.write_bytes(cut.read_bytes()[:-10])
    before = {p: p.read_bytes() for p in (not_json, cut)}
    result = repair_manifests(root, manifests)
    assert result.repaired == [] and len(result.problems) == 2
    assert "line 2 is not a JSON object" in result.problems[0] and "truncated" in result.problems[1]
    assert {p: p.read_bytes() for p in before} == before and not manifests.exists()


def test_repair_skips_an_archive_of_a_live_session(tmp_path: Path) -> None:
    root, manifests = tmp_path / "rec", tmp_path / "m"
    path = closed_archive(root, SESSION, [b'{"n": 1}\n'])
    with acquire([root], owner="x", session_id=SESSION, command="test", session_root=root):
        assert repair_manifests(root, manifests).live == [path]
    assert len(repair_manifests(root, manifests).repaired) == 1


def rotating(root: Path, manifests: Path) -> RotatingArchive:
    return RotatingArchive(
        "ws_raw",
        root=root,
        manifest_dir=manifests,
        session_id=SESSION,
        interval=2,
        settings=Archive(flush_interval_seconds=0.05),
        counters=dict,
    )


def lines_by_file(root: Path) -> dict[str, list[int]]:
    return {
        p.name: [json.loads(line)["n"] for line in iter_gzip_lines(p)]
        for p in sorted(root.rglob("*.jsonl.gz"))
    }


def test_a_clock_stepping_back_across_a_rotation_never_stops_the_archive(tmp_path: Path) -> None:
    root, manifests = tmp_path / "rec", tmp_path / "m"
    t0 = 1_790_000_000 * 10**9  # a period start (interval 2 s)
    # receive times: rotate at +2.1 s, then the clock steps back 1 s (NTP), then forward past +4 s
    times = [0.1, 1.9, 2.1, 1.1, 1.95, 2.5, 4.2, 3.9, 4.5]

    async def main() -> None:
        archive = rotating(root, manifests)
        for n, seconds in enumerate(times, 1):
            archive.append(json.dumps({"n": n}).encode() + b"\n", t0 + int(seconds * 1e9))
        await archive.close()

    asyncio.run(main())
    files = lines_by_file(root)
    assert sorted(n for ns in files.values() for n in ns) == list(range(1, len(times) + 1))  # each once
    assert list(files.values()) == [[1, 2], [3, 4, 5, 6], [7, 8, 9]]  # never an earlier period reopened
    assert len(list(manifests.glob("*.manifest.json"))) == 3


def test_a_taken_final_name_gets_a_distinct_name_not_an_error(tmp_path: Path) -> None:
    root, manifests = tmp_path / "rec", tmp_path / "m"
    t0 = 1_790_000_000 * 10**9
    taken = archive_name(root, "ws_raw", SESSION, 1_790_000_002, 2).final
    taken.parent.mkdir(parents=True, exist_ok=True)
    taken.write_bytes(b"somebody else's bytes")

    async def main() -> None:
        archive = rotating(root, manifests)
        for n, seconds in enumerate([0.5, 2.5, 3.0], 1):
            archive.append(json.dumps({"n": n}).encode() + b"\n", t0 + int(seconds * 1e9))
        await archive.close()

    asyncio.run(main())
    assert taken.read_bytes() == b"somebody else's bytes"
    suffixed = taken.with_name(taken.name.replace(".jsonl.gz", "-1.jsonl.gz"))
    assert [json.loads(line)["n"] for line in iter_gzip_lines(suffixed)] == [2, 3]
    assert session_of_name(suffixed.name) == SESSION
    assert manifest_path_for(manifests, suffixed).exists()
    candidates, _ = find_candidates(root, manifests, min_age_seconds=0)
    assert suffixed in [c.path for c in candidates]  # upload takes the suffixed name


def test_salvage_waits_for_a_recovery_already_running_on_the_same_root(tmp_path: Path) -> None:
    """Two shards starting together on one root (or `verify --repair-manifests`) never salvage at once."""
    import threading

    from pmws.lock import recovery_lock

    root, manifests = tmp_path / "rec", tmp_path / "m"
    orphan, complete, _ = make_orphan(root)
    done = threading.Event()

    def start() -> None:
        salvage_orphans(root, manifest_dir=manifests, settings=Archive())
        done.set()

    with recovery_lock(root):
        worker = threading.Thread(target=start)
        worker.start()
        assert not done.wait(0.5)  # the other recovery holds the root: nothing is touched meanwhile
        assert orphan.exists() and not list(manifests.glob("*.manifest.json"))
    worker.join(timeout=30 * TIME_FACTOR)
    assert done.is_set() and not orphan.exists()
    assert len(list(manifests.glob("*.manifest.json"))) == 1


def test_each_file_counts_what_happened_during_its_own_period(tmp_path: Path) -> None:
    """Counter deltas are frozen when a period ends, so the files' deltas add up to the total exactly,
    even while the recorder keeps counting during a background close."""
    root, manifests = tmp_path / "rec", tmp_path / "m"
    t0 = 1_790_000_000 * 10**9
    frames = {"frames": 0}

    async def main() -> None:
        archive = RotatingArchive(
            "ws_raw",
            root=root,
            manifest_dir=manifests,
            session_id=SESSION,
            interval=2,
            settings=Archive(flush_interval_seconds=0.05),
            counters=lambda: dict(frames),
        )
        for n, seconds in enumerate([0.1, 0.5, 1.0, 2.1, 2.2, 4.5], 1):
            archive.append(json.dumps({"n": n}).encode() + b"\n", t0 + int(seconds * 1e9))
            frames["frames"] += 1  # counted as the line is written, like the recorder does
        frames["frames"] += 100  # frames of a later file, counted before the background closes finish
        await asyncio.sleep(0)
        await archive.close()

    asyncio.run(main())
    by_start = sorted(
        (m["period_start_utc"], m["counters"]["frames"])
        for m in (json.loads(p.read_text()) for p in manifests.glob("*.manifest.json"))
    )
    assert [n for _, n in by_start] == [3, 2, 101]
