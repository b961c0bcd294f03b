"""`read_records`: every record of some archives in receive order, filtered, with gaps and replica merge."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmws.errors import PmwsError
from pmws.read.files import LineSource, local_lines, read_chain
from pmws.read.gaps import GapFinder
from pmws.read.merge import Deduplicator, merge_chains
from pmws.read.records import GAP, FileProblem, ReadReport, Record
from pmws.read.sources import ArchiveFile, Found, chains, find_local, load_manifests, sessions_overlap
from pmws.transfer.rclone import Rclone

DEFAULT_REPLICA_TOLERANCE_SECONDS = 2.0
#: Without sessions that overlap in time there is nothing to merge: records are only held this long (and at
#: most this many), to put the few lines a file wrote a little out of receive order back in order: `pmws run`
#: writes a new hour's first lifecycle lines before the frame that opened it, one or two lines back. Fewer
#: held records is faster: a parsed line read again (and freed) after thousands of others is out of cache.
REORDER_SECONDS = 0.1
REORDER_RECORDS = 64


@dataclass(frozen=True)
class Filters:
    """Which records to yield. Empty sets mean all; times are epoch ns, `end_ns` exclusive.

    Token and slug filters keep frames that concern one of them (`tokens_tracked`), REST checkpoints that
    asked for one, and lifecycle/gap records that name one or name no token at all.
    """

    start_ns: int | None = None
    end_ns: int | None = None
    tokens: frozenset[str] = frozenset()
    slugs: frozenset[str] = frozenset()
    event_types: frozenset[str] = frozenset()  # ws_frame `classified_event_types`
    record_types: frozenset[str] = frozenset()  # ws_frame, lifecycle, rest_checkpoint, divergence, gap
    #: the tokens of `slugs`, learned from manifests and frames as the read goes (records that name tokens
    #: but no slug, such as REST checkpoints, are kept by these)
    slug_tokens: set[str] = field(default_factory=set, compare=False, repr=False)

    def keeps(self, record: Record) -> bool:
        ns = record.received_ns
        if (self.start_ns is not None and ns < self.start_ns) or (
            self.end_ns is not None and ns >= self.end_ns
        ):
            if record.record_type != GAP or not _overlaps(record.row, self.start_ns, self.end_ns):
                return False
        if self.record_types and record.record_type not in self.record_types:
            return False
        row = record.row
        if record.record_type == "ws_frame":
            if self.event_types and not self.event_types.intersection(
                row.get("classified_event_types") or ()
            ):
                return False
            if self.tokens or self.slugs:
                return any(self._token_ok(t) for t in row.get("tokens_tracked") or () if isinstance(t, dict))
            return True
        if self.event_types and record.record_type not in (GAP, "lifecycle"):
            return False
        if self.tokens or self.slugs:
            named = _tokens_named(row)
            return (
                not named
                or bool(self.tokens & named)
                or bool(self.slug_tokens & named)
                or row.get("market_slug") in self.slugs
            )
        return True

    def learn(self, tokens: Any) -> None:
        """Note the tokens of the selected slugs among `tokens_tracked`-style entries."""
        if self.slugs and isinstance(tokens, list):
            for token in tokens:
                if isinstance(token, dict):
                    self._of_a_slug(token)

    def _token_ok(self, token: dict[str, Any]) -> bool:
        if self.tokens and token.get("token_id") in self.tokens:
            return True
        return bool(self.slugs) and self._of_a_slug(token)

    def _of_a_slug(self, token: dict[str, Any]) -> bool:
        """Is this tracked token one of the selected slugs' (then noted in `slug_tokens`)?"""
        if token.get("market_slug") not in self.slugs:
            return False
        self.slug_tokens.add(str(token.get("token_id")))
        return True


def _overlaps(row: dict[str, Any], start: int | None, end: int | None) -> bool:
    return (start is None or row["end_ns"] >= start) and (end is None or row["start_ns"] < end)


def _tokens_named(row: dict[str, Any]) -> set[str]:
    named: set[str] = set()
    if isinstance(row.get("token_id"), str):
        named.add(row["token_id"])
    for key in ("assets_ids",):
        if isinstance(row.get(key), list):
            named.update(t for t in row[key] if isinstance(t, str))
    request = row.get("request")
    if isinstance(request, dict) and isinstance(request.get("token_ids"), list):
        named.update(t for t in request["token_ids"] if isinstance(t, str))
    if isinstance(row.get("asset_id"), str):
        named.add(row["asset_id"])
    return named


@dataclass
class Reader:
    """An iterable over archives; iterate once. `report` fills in as records come out.

    `on_file(item)` is called as each file is opened (progress). Local paths only here; `open_remote`
    (pmws.read.remote) builds one for an rclone remote.
    """

    files: list[ArchiveFile]
    filters: Filters = field(default_factory=Filters)
    replica_tolerance_seconds: float = DEFAULT_REPLICA_TOLERANCE_SECONDS
    report: ReadReport = field(default_factory=ReadReport)
    lines: LineSource = local_lines
    on_file: Callable[[ArchiveFile], None] | None = None
    #: names of archives found but not read (still `.open`: being written), so that a manifest naming one as
    #: the next file is not taken for a lost file
    open_names: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self._known: frozenset[str] | None = None
        self.report.files = len(self.files)
        for item in self.files:  # each file's tokens, with their slugs (ws_raw manifests)
            self.filters.learn((item.manifest or {}).get("tokens_tracked"))
        self._everything = self.filters == Filters()

    def __iter__(self) -> Iterator[Record]:
        report = self.report
        finder = GapFinder()
        found = self._chains()
        replicas = sessions_overlap(found)
        window = self.replica_tolerance_seconds if replicas else REORDER_SECONDS
        dedup = Deduplicator(
            int(window * 1e9), replicas=replicas, max_held=None if replicas else REORDER_RECORDS
        )
        end_ns = self.filters.end_ns
        keeps = None if self._everything else self.filters.keeps
        observe = finder.observe
        # One flat loop (no generator per record): this is the hot path of `pmws books` and `pmws replay`.
        for record in merge_chains(found, self._open_chain):
            if end_ns is not None and record.received_ns >= end_ns + dedup.tolerance_ns:
                break
            for ready in dedup.feed(record):
                if ready.record_type != GAP:  # a gap read from a file was counted where it was made
                    for gap in observe(ready):
                        report.gaps += 1
                        if keeps is None or keeps(gap):
                            report.records += 1
                            yield gap
                if keeps is None or keeps(ready):
                    report.records += 1
                    yield ready
        for ready in dedup.flush():
            yield from self._emit(ready, finder)
        for gap in finder.finish():
            report.gaps += 1
            yield from self._keep(gap)
        report.duplicates = dedup.duplicates

    def covers_window(self) -> bool:
        """Does any file's period overlap the filters' [start, end) (always, for files without a period)?"""
        start, end = self.filters.start_ns, self.filters.end_ns
        for item in self.files:
            begins, ends = item.period_start_ns, item.period_end_ns
            if begins is None or ends is None:
                return True
            if (end is None or begins < end) and (start is None or ends > start):
                return True
        return False

    def _chains(self) -> list[list[ArchiveFile]]:
        end = self.filters.end_ns
        found = chains(self.files)
        if end is None:
            return found
        kept = [[f for f in chain if f.period_start_ns is None or f.period_start_ns < end] for chain in found]
        return [chain for chain in kept if chain]  # a session that began after the window: nothing to read

    def _open_chain(self, chain: list[ArchiveFile]) -> Iterator[Record]:
        if self._known is None:
            self._known = frozenset(f.name for f in self.files) | self.open_names
        return read_chain(
            chain,
            self.report,
            lines=self.lines,
            start_ns=self.filters.start_ns,
            on_file=self.on_file,
            known=self._known,
        )

    def _emit(self, record: Record, finder: GapFinder) -> Iterator[Record]:
        if record.record_type == GAP:
            yield from self._keep(record)  # counted where it was made
            return
        for gap in finder.observe(record):
            self.report.gaps += 1
            yield from self._keep(gap)
        yield from self._keep(record)

    def _keep(self, record: Record) -> Iterator[Record]:
        if self._everything or self.filters.keeps(record):
            self.report.records += 1
            yield record


def open_archives(
    sources: Iterable[str | Path] | str | Path,
    *,
    filters: Filters | None = None,
    manifest_dirs: Iterable[str | Path] = (),
    replica_tolerance_seconds: float = DEFAULT_REPLICA_TOLERANCE_SECONDS,
    on_file: Callable[[ArchiveFile], None] | None = None,
    rclone: Rclone | None = None,
) -> Reader:
    """A reader over archive files and directories (hive `date=/hour=` or sample outputs), local or on an
    rclone remote (`remote:bucket/path`, read streamed with `rclone cat`; `rclone` says which binary and
    config, default `rclone` with the user's own config).

    `.open` files (being written, or waiting for salvage), sources that do not exist and remotes that
    cannot be listed are named in `reader.report.problems` and skipped.
    """
    from pmws.read.remote import RemoteLines, is_remote, list_remote

    if isinstance(sources, str | Path):
        sources = [sources]
    sources, manifest_dirs = list(sources), list(manifest_dirs)
    remotes = [str(s) for s in sources if is_remote(s)]
    found: Found = find_local([s for s in sources if not is_remote(s)], manifest_dirs)
    problems: list[FileProblem] = []
    if remotes:
        rclone = rclone or Rclone()
        for remote in remotes:
            try:
                files, open_files = list_remote(rclone, remote, load_manifests(manifest_dirs))
            except PmwsError as exc:
                problems.append(FileProblem(remote, f"cannot list the remote ({exc})", skipped=True))
                continue
            found.files += files
            found.open_files += open_files
    reader = Reader(
        found.files,
        filters or Filters(),
        replica_tolerance_seconds=replica_tolerance_seconds,
        on_file=on_file,
        lines=RemoteLines(rclone) if rclone is not None and remotes else local_lines,
        open_names=frozenset(_final_name(str(p)) for p in found.open_files),
    )
    reader.report.problems += problems
    for path in found.missing:
        reader.report.problems.append(FileProblem(path, "no such file or directory", skipped=True))
    for path in found.open_files:
        reader.report.problems.append(
            FileProblem(
                path, "still open (being written, or waiting for salvage at the next start)", skipped=True
            )
        )
    return reader


def read_records(sources: Iterable[str | Path] | str | Path, **options: Any) -> Iterator[Record]:
    """Shorthand: iterate `open_archives(sources, **options)` (use `open_archives` to see its report)."""
    return iter(open_archives(sources, **options))


def _final_name(open_path: str) -> str:
    """`…/.x.jsonl.gz.open` (or a remote path) → `x.jsonl.gz` (lenient, unlike `rotation.final_name_of_open`:
    a remote may list an `.open` name pmws did not write)."""
    return open_path.rsplit("/", 1)[-1].removeprefix(".").removesuffix(".open")
