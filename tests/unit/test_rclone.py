"""The rclone wrapper against a fake `rclone` on PATH: argument lists, errors, redaction, listings."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from pmws.errors import UploadError
from pmws.transfer.rclone import Rclone, Redactor, join_remote, redact, run_rclone, split_remote, which

SECRET = "SUPERSECRETKEY123"


@pytest.fixture
def fake_rclone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`rclone` on PATH: records its arguments (one per line) and runs the body in FAKE_RCLONE."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "rclone"
    script.write_text(
        '#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "$FAKE_RCLONE_ARGS"\n. "$FAKE_RCLONE"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    body = tmp_path / "body.sh"
    body.write_text("exit 0\n")
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_RCLONE", str(body))
    monkeypatch.setenv("FAKE_RCLONE_ARGS", str(tmp_path / "args"))
    return body


def args_seen(body: Path) -> list[str]:
    return (body.parent / "args").read_text().splitlines()


def test_arguments_are_passed_as_a_list_and_config_only_when_set(fake_rclone: Path) -> None:
    tricky = "x:dir with space/$(touch pwned); rm -rf ~"
    run_rclone("rclone", ["lsjson", tricky], config=None)
    assert args_seen(fake_rclone) == ["lsjson", tricky]
    run_rclone("rclone", ["lsjson", "x:"], config="/etc/rclone/rclone.conf")
    assert args_seen(fake_rclone) == ["--config", "/etc/rclone/rclone.conf", "lsjson", "x:"]
    assert not Path("pwned").exists()


def test_a_missing_binary_is_one_clear_error() -> None:
    with pytest.raises(UploadError, match=r"rclone not found: /nowhere/rclone \(install rclone"):
        run_rclone("/nowhere/rclone", ["version"], config=None)


def test_failure_reports_the_first_error_line_redacted(
    fake_rclone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "rclone.conf"
    conf.write_text(f"[s3]\ntype = s3\naccess_key_id = AKIDCONFIG\nsecret_access_key = {SECRET}\n")
    monkeypatch.setenv("RCLONE_CONFIG_OTHER_SECRET_ACCESS_KEY", "ENVSECRET42")
    fake_rclone.write_text(
        "echo '2026/11/24 03:00:00 NOTICE: Config file loaded' >&2\n"
        f"echo '2026/11/24 03:00:01 ERROR : s3: {SECRET} / ENVSECRET42 / AKIAABCDEFGHIJKLMNOP "
        "https://user:hunter22@example.com secret_access_key=inline1' >&2\n"
        "echo 'later line' >&2\nexit 7\n"
    )
    with pytest.raises(UploadError) as caught:
        run_rclone("rclone", ["copyto", "a", "s3:b/a"], config=str(conf))
    message = str(caught.value)
    assert message.startswith("rclone copyto failed (exit 7): ERROR : s3: ")
    for leaked in (SECRET, "ENVSECRET42", "AKIAABCDEFGHIJKLMNOP", "hunter22", "inline1", "2026/11/24"):
        assert leaked not in message
    assert "later line" not in message


def test_secrets_of_the_default_config_are_known_too(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".config" / "rclone").mkdir(parents=True)
    (home / ".config" / "rclone" / "rclone.conf").write_text(
        "[gcs]\ntype = google cloud storage\ntoken = tok-123\n"
    )
    redactor = Redactor.from_sources(None, {"HOME": str(home)})
    assert redactor("oauth2: cannot fetch token tok-123") == "oauth2: cannot fetch token ***"


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        (":s3,provider=AWS,secret_access_key=abcDEF123,access_key_id=AK1:bucket/x", "abcDEF123"),
        ("GET https://b.s3.amazonaws.com/x?X-Amz-Signature=deadbeef&X-Amz-Credential=AK%2F1", "deadbeef"),
        ("Authorization: AWS4-HMAC-SHA256 Credential=AKIAABCDEFGHIJKLMNOP/2026", "AKIAABCDEFGHIJKLMNOP"),
        ("password: pa55word", "pa55word"),
    ],
)
def test_credential_shaped_text_is_redacted(text: str, leak: str) -> None:
    assert leak not in redact(text)


def test_connection_string_paths_survive_redaction() -> None:
    assert redact(":s3,secret_access_key=abc:bucket/x") == ":s3,secret_access_key=***:bucket/x"


def test_a_bare_name_not_on_path_is_taken_from_beside_the_running_python(
    fake_rclone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"  # the fake rclone's directory, now standing for the venv's bin
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(sys, "executable", str(bindir / "python"))
    assert which("rclone") == str(bindir / "rclone")
    assert which("no-such-rclone") is None and which(str(tmp_path / "rclone")) is None  # paths as given
    run_rclone("rclone", ["version"], config=None)
    assert args_seen(fake_rclone) == ["version"]


def test_timeouts_kill_rclone(fake_rclone: Path) -> None:
    fake_rclone.write_text("exec sleep 5\n")
    with pytest.raises(UploadError, match="rclone cat timed out after 0.3s"):
        run_rclone("rclone", ["cat", "x:y"], config=None, timeout=0.3)
    with pytest.raises(UploadError, match="rclone cat timed out after 0.3s"):
        run_rclone("rclone", ["cat", "x:y"], config=None, timeout=0.3, stream=lambda chunk: None)


def test_cat_streams_bytes_and_fails_cleanly(fake_rclone: Path) -> None:
    fake_rclone.write_text("head -c 3000000 /dev/zero\nexit 0\n")
    chunks: list[bytes] = []
    Rclone().cat_remote("x:a/b", chunks.append)
    assert sum(map(len, chunks)) == 3_000_000 and len(chunks) > 1
    fake_rclone.write_text("echo 'ERROR : b: object not found' >&2\nexit 3\n")
    with pytest.raises(UploadError, match="rclone cat failed \\(exit 3\\): ERROR : b: object not found"):
        Rclone().cat_remote("x:a/b", chunks.append)


def test_one_listing_per_directory_gives_sizes_and_hashes(fake_rclone: Path) -> None:
    listing = [
        {"Path": "a.gz", "Name": "a.gz", "Size": 10, "IsDir": False, "Hashes": {"md5": "m", "sha256": "s"}},
        {"Path": "b.gz", "Name": "b.gz", "Size": 20, "IsDir": False, "Hashes": {"md5": "m2"}},
    ]
    fake_rclone.write_text(f"cat <<'EOF'\n{json.dumps(listing)}\nEOF\necho call >> \"$FAKE_RCLONE_ARGS.n\"\n")
    rclone = Rclone(config="/c.conf")
    assert rclone.remote_hashes("x:bucket/h=01/a.gz") == {"md5": "m", "sha256": "s"}
    assert rclone.remote_size("x:bucket/h=01/b.gz") == 20 and rclone.remote_entry("x:bucket/h=01/c") is None
    assert Path(str(fake_rclone.parent / "args") + ".n").read_text().count("call") == 1
    assert args_seen(fake_rclone) == [
        "--config", "/c.conf", "lsjson", "--files-only", "--no-mimetype", "--no-modtime",
        "--hash-type", "SHA256", "--hash-type", "MD5", "x:bucket/h=01",
    ]  # fmt: skip


def test_a_missing_remote_directory_is_an_empty_listing(fake_rclone: Path) -> None:
    fake_rclone.write_text("echo '[' ; echo 'ERROR : error listing: directory not found' >&2; exit 3\n")
    assert Rclone().remote_entry("x:bucket/nope/a.gz") is None


@pytest.mark.parametrize(
    ("remote", "parts", "joined"),
    [
        ("s3:bucket/orderbooks", ("ws_raw/a.gz",), "s3:bucket/orderbooks/ws_raw/a.gz"),
        ("s3:bucket/orderbooks/", ("/ws_raw/a.gz",), "s3:bucket/orderbooks/ws_raw/a.gz"),
        ("local:", ("manifests", "a.json"), "local:manifests/a.json"),
        ("local:/", ("a.gz",), "local:/a.gz"),
        ("/srv/archive", ("a.gz",), "/srv/archive/a.gz"),
    ],
)
def test_join_remote(remote: str, parts: tuple[str, ...], joined: str) -> None:
    assert join_remote(remote, *parts) == joined


@pytest.mark.parametrize(
    ("path", "split"),
    [
        ("s3:bucket/dir/a.gz", ("s3:bucket/dir", "a.gz")),
        ("s3:a.gz", ("s3:", "a.gz")),
        ("local:/a.gz", ("local:/", "a.gz")),
        ("/srv/a.gz", ("/srv", "a.gz")),
        ("/a.gz", ("/", "a.gz")),
    ],
)
def test_split_remote(path: str, split: tuple[str, str]) -> None:
    assert split_remote(path) == split
