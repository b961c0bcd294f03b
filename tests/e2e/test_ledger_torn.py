"""A torn upload-ledger line (a run killed mid-append) is reported by upload and verify, never merged."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_upload import LEDGER, archive, invoke, local_remote, write_config

__all__ = ["local_remote"]  # the fixture, re-exported for pytest


def test_a_torn_ledger_line_is_reported_and_the_next_records_stay_whole(
    local_remote: tuple[str, Path, Path],
) -> None:
    remote, _, conf = local_remote
    path = archive("a.jsonl.gz", 1)
    config = write_config(remote, conf)
    LEDGER.parent.mkdir(parents=True)
    LEDGER.write_bytes(b'{"event": "verified", "relative_path": "ws_raw/')  # killed mid-append
    result = invoke("upload", "--config", str(config), "--cleanup-after-verify")
    assert result.exit_code == 0, result.output
    assert "1 torn line" in result.output and str(LEDGER) in result.output
    assert not path.exists()
    lines = LEDGER.read_bytes().split(b"\n")
    assert [json.loads(line)["event"] for line in lines[1:] if line] == ["uploaded", "verified", "deleted"]
    checked = invoke("verify", "--config", str(config), "--remote", remote)
    assert checked.exit_code == 0, checked.output
    assert "shipped (deleted after verify)" in checked.output
    assert "1 torn line" in checked.output
