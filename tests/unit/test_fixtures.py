"""The captured payloads the tests read live in the repository, each with its source (no ../shared)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]


def test_every_fixture_has_a_source_row_and_every_row_a_file() -> None:
    listed = set(re.findall(r"^\| `([^`]+)` \|", (EXAMPLES / "SOURCES.md").read_text(), re.M))
    present = {path.name for path in EXAMPLES.iterdir()} - {"SOURCES.md"}
    assert EXAMPLES == ROOT / "tests" / "fixtures"
    assert present and listed == present


def test_nothing_reads_payloads_from_outside_the_repository() -> None:
    sources = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("benchmarks/*.py"), ROOT / ".ci" / "run"]
    sources.remove(Path(__file__).resolve())  # the pattern below
    pattern = re.compile(r"\.\./shared|[\"']shared[\"']|PMWS_SHARED")
    offenders = [str(p.relative_to(ROOT)) for p in sources if pattern.search(p.read_text())]
    assert offenders == []
