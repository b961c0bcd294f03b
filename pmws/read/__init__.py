"""Reading pmws archives back: every record in receive order, with gaps, replicas merged, damage reported.

    from pmws.read import Filters, open_archives

    reader = open_archives(["raw_orderbooks/polymarket"], filters=Filters(event_types=frozenset({"book"})))
    for record in reader:          # Record(received_ns, record_type, row, source, seen_by)
        ...
    print(reader.report.summary())  # files, frames, replica duplicates, gaps, problems (each named)

Sources are archive files or directories: `pmws run`'s hive layout (`ws_raw/date=…/hour=…/`, plus its
`rest_checkpoints/`), `pmws sample` outputs, or an rclone remote (`open_remote`). Records of every file and
session come out in one stream ordered by receive time; gaps come out as `gap` records (start, end, cause);
damaged input never raises: it is a `FileProblem` in `reader.report.problems`, and reading goes on.
"""

from pmws.read.reader import DEFAULT_REPLICA_TOLERANCE_SECONDS, Filters, Reader, open_archives, read_records
from pmws.read.records import GAP, FileProblem, ReadReport, Record, gap_row, received_ns_of, utc_to_ns
from pmws.read.sources import ArchiveFile

__all__ = [
    "DEFAULT_REPLICA_TOLERANCE_SECONDS",
    "GAP",
    "ArchiveFile",
    "FileProblem",
    "Filters",
    "ReadReport",
    "Reader",
    "Record",
    "gap_row",
    "open_archives",
    "read_records",
    "received_ns_of",
    "utc_to_ns",
]
