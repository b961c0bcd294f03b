"""The CLI contract: each command hands its flags, PMWS_* variables and --config file to ONE library call,
and turns that call's result or exception into the exit code and (for an error) one stderr line.

The library call is replaced by a spy, so these tests check the wiring only; the end-to-end tests check
what the library does. The commands import their library call inside the command (a fast `pmws --help`),
so the spy goes where that import finds it: the library module (`pmws.gate.run_gate`, ...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from pmws.books import BooksResult
from pmws.checks import Verdict
from pmws.cli import app
from pmws.config import Config
from pmws.errors import ArchiveError, ConfigError, DiscoveryError, FeedError, UploadError, VerifyError
from pmws.layout import session_output
from pmws.read import FileProblem, ReadReport
from pmws.transfer.rclone import Rclone
from pmws.transfer.upload import Action, FileOutcome, UploadReport


class Spy:
    """Stands in for a library call: records every call, then returns `result` (or raises it)."""

    def __init__(self, result: Any = None) -> None:
        self.result = result
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result

    @property
    def args(self) -> tuple[Any, ...]:
        assert len(self.calls) == 1, f"called {len(self.calls)} times"
        return self.calls[0][0]

    @property
    def kwargs(self) -> dict[str, Any]:
        assert len(self.calls) == 1, f"called {len(self.calls)} times"
        return self.calls[0][1]


class AsyncSpy(Spy):
    """A Spy for a coroutine function (the command runs it with `asyncio.run`)."""

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return Spy.__call__(self, *args, **kwargs)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def gate_outcome(verdict: Verdict) -> SimpleNamespace:
    return SimpleNamespace(
        verdict=verdict, checks=[], not_written=[], manifest_path=Path("m.json"), report_path=Path("r.md")
    )


DISCOVERY = SimpleNamespace(
    result=SimpleNamespace(markets=[], seen=0, skipped_not_btc=0, skipped_malformed=0, skipped_not_live=0),
    requests=1,
    failed_requests=0,
    latest_path=Path("latest.json"),
)


def failed_verify() -> SimpleNamespace:
    failure = SimpleNamespace(
        target=SimpleNamespace(relative_path="a.jsonl.gz"), local="FAIL", remote="-", ok=False, problems=["x"]
    )
    return SimpleNamespace(
        results=[failure],
        failed=[failure],
        ok=False,
        remote=None,
        repair_problems=[],
        repaired=[],
        warnings=[],
    )


def books_result(*, skipped: bool) -> BooksResult:
    report = ReadReport()
    if skipped:
        report.problems.append(FileProblem("a.jsonl.gz", "not gzip", skipped=True))
    hashes = {"hash": {"verified": 1, "pending": 0, "mismatched": 0, "unverifiable": 0}, "rest_agree": 0}
    return BooksResult(Path("out"), report, {"book_changes": 1}, 1, hashes, 0, 0, 0)


def passed_verify() -> SimpleNamespace:
    passed = SimpleNamespace(
        target=SimpleNamespace(relative_path="a.jsonl.gz"), local="ok", remote="-", ok=True, problems=[]
    )
    return SimpleNamespace(
        results=[passed], failed=[], ok=True, remote=None, repair_problems=[], repaired=[], warnings=[]
    )


@dataclass(frozen=True)
class Command:
    """One command's library call, and what it returns when all is well and when it is not."""

    name: str
    target: str  # where the command's `from ... import ...` finds the call
    spy: type[Spy]
    ok: Callable[[], Any]
    not_ok: Callable[[], Any] | None  # a result (not an exception) that means exit 1
    extra: tuple[str, ...] = ()  # arguments the command needs to reach the call


COMMANDS = {
    c.name: c
    for c in (
        Command("discover", "pmws.discover.discover", AsyncSpy, lambda: DISCOVERY, None),
        Command(
            "sample",
            "pmws.sample.run_sample",
            AsyncSpy,
            lambda: SimpleNamespace(gate=gate_outcome(Verdict.PASS), error=None),
            lambda: SimpleNamespace(gate=gate_outcome(Verdict.NEEDS_REVIEW), error=None),
            ("--no-live",),
        ),
        Command(
            "gate",
            "pmws.gate.run_gate",
            Spy,
            lambda: gate_outcome(Verdict.PASS),
            lambda: gate_outcome(Verdict.NEEDS_REVIEW),
        ),
        Command(
            "run",
            "pmws.run.run_recorder",
            AsyncSpy,
            lambda: SimpleNamespace(error=None),
            None,
            ("--no-live",),
        ),
        Command("simulate", "pmws.sim.serve_forever", AsyncSpy, lambda: None, None),
        Command(
            "upload",
            "pmws.transfer.upload.upload",
            Spy,
            lambda: UploadReport(remote="r:"),
            lambda: UploadReport(remote="r:", outcomes=[FileOutcome("a.gz", 1, Action.FAILED, detail="no")]),
            ("--remote", "r:x"),
        ),
        Command("verify", "pmws.transfer.verify.verify", Spy, passed_verify, failed_verify),
        Command("replay", "pmws.replay.server.serve_replay", AsyncSpy, lambda: None, None, ("archives",)),
        Command(
            "books",
            "pmws.books.export_books",
            Spy,
            lambda: books_result(skipped=False),
            lambda: books_result(skipped=True),
        ),
    )
}


def test_every_command_has_a_contract() -> None:
    from tests.cli.test_cli import COMMANDS as ALL

    assert sorted(COMMANDS) == sorted(ALL)


@pytest.fixture
def spy_on(monkeypatch: pytest.MonkeyPatch) -> Callable[[Command, Any], Spy]:
    def install(command: Command, result: Any) -> Spy:
        spy = command.spy(result)
        monkeypatch.setattr(command.target, spy)
        if command.name == "run":  # the summary line is built from the outcome: not this test's business
            monkeypatch.setattr("pmws.run.summary_json", lambda outcome: '{"summary": true}')
        if command.name == "replay":  # what it serves is read first: not this test's business either
            monkeypatch.setattr("pmws.replay.load.build_replay", Spy(SimpleNamespace(files=[])))
        return spy

    return install


# --- results and exceptions → exit code and one stderr line -------------------------------------------


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_good_result_exits_0(name: str, spy_on: Callable[[Command, Any], Spy]) -> None:
    command = COMMANDS[name]
    spy = spy_on(command, command.ok())
    result = invoke(name, *command.extra)
    assert result.exit_code == 0, result.output
    assert result.stderr == "" and len(spy.calls) == 1


@pytest.mark.parametrize("name", sorted(n for n, c in COMMANDS.items() if c.not_ok))
def test_a_bad_result_exits_1(name: str, spy_on: Callable[[Command, Any], Spy]) -> None:
    command = COMMANDS[name]
    assert command.not_ok is not None
    spy_on(command, command.not_ok())
    result = invoke(name, *command.extra)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output


ERRORS = [
    (DiscoveryError("no live market; kept latest.json"), 1),
    (FeedError("the feed went away"), 1),
    (ArchiveError("x.gz: not gzip"), 1),
    (UploadError("rclone failed"), 1),
    (VerifyError("remote differs"), 1),
    (ConfigError("upload.remote is not set"), 2),
]


@pytest.mark.parametrize("error,code", ERRORS, ids=[type(e).__name__ for e, _ in ERRORS])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_an_error_is_its_exit_code_and_one_stderr_line(
    name: str, error: Exception, code: int, spy_on: Callable[[Command, Any], Spy]
) -> None:
    command = COMMANDS[name]
    spy_on(command, error)
    result = invoke(name, *command.extra)
    assert result.exit_code == code, result.output
    assert result.stderr.splitlines() == [f"error: {error}"]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("how", ["--debug", "PMWS_DEBUG=1"])
def test_debug_lets_the_error_itself_out(name: str, how: str, spy_on: Callable[[Command, Any], Spy]) -> None:
    """Without --debug the runner sees SystemExit(1); with it, the library's own exception (a traceback)."""
    command = COMMANDS[name]
    error = ArchiveError("x.gz: not gzip")
    spy_on(command, error)
    plain = invoke(name, *command.extra)
    assert isinstance(plain.exception, SystemExit) and plain.exit_code == 1
    flag = ("--debug",) if how == "--debug" else ()
    env = {"PMWS_DEBUG": "1"} if how != "--debug" else None
    debug = invoke(name, *command.extra, *flag, env=env)
    assert debug.exception is error
    assert debug.stderr == ""  # the traceback is the message, not a red line


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_ctrl_c_exits_130(name: str, spy_on: Callable[[Command, Any], Spy]) -> None:
    command = COMMANDS[name]
    spy_on(command, KeyboardInterrupt())
    result = invoke(name, *command.extra)
    if name in ("simulate", "replay"):  # Ctrl-C is how a server is meant to stop
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 130 and result.stderr == "interrupted\n"


@pytest.mark.parametrize(
    "name,outcome",
    [
        ("sample", SimpleNamespace(gate=gate_outcome(Verdict.PASS), error=FeedError("link lost"))),
        ("run", SimpleNamespace(error=FeedError("link lost"))),
    ],
)
def test_an_error_in_the_outcome_still_renders_then_exits_1(
    name: str, outcome: Any, spy_on: Callable[[Command, Any], Spy]
) -> None:
    spy_on(COMMANDS[name], outcome)
    result = invoke(name, "--no-live")
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == ["error: link lost"]
    rendered = "WS_RAW_SAMPLE_PASS" if name == "sample" else '{"summary": true}'
    assert rendered in result.stdout


# --- config file < PMWS_* < flag ----------------------------------------------------------------------


@dataclass(frozen=True)
class Layered:
    """A config key a command's flag overrides, and where the library call receives it."""

    command: str
    key: str  # dotted config key
    flag: str
    values: tuple[str, str, str]  # from the file, from the environment, from the flag
    seen: Callable[[Spy], Any] | None = None  # where the call gets it; None: the Config it is passed


MODES = ("sha256", "md5", "download")


def config_of(spy: Spy) -> Config:
    config = spy.args[0]
    assert isinstance(config, Config)
    return config


LAYERED = [
    Layered("discover", "discovery.output_dir", "--output-dir", ("f", "e", "c")),
    Layered("sample", "sample.market_limit", "--market-limit", ("3", "4", "5")),
    Layered("sample", "sample.duration_seconds", "--duration-seconds", ("7.5", "8.5", "9.5")),
    Layered(
        "sample",
        "sample.rest_checkpoint_interval_seconds",
        "--rest-checkpoint-interval-seconds",
        ("2.5", "3.5", "4.5"),
    ),
    Layered(
        "gate", "sample.manifest_path", "--manifest", ("f.json", "e.json", "c.json"), lambda s: s.args[0]
    ),
    Layered("run", "run.shard_count", "--shard-count", ("3", "4", "5")),
    Layered("run", "run.shard_index", "--shard-index", ("1", "2", "3")),
    Layered("upload", "upload.source", "--source", ("f", "e", "c"), lambda s: s.args[0].source),
    Layered("upload", "upload.remote", "--remote", ("f:a", "e:b", "c:c"), lambda s: s.args[0].remote),
    Layered("upload", "upload.verify_mode", "--verify-mode", MODES, lambda s: s.args[0].verify_mode),
    Layered(
        "verify", "upload.manifest_dir", "--manifest-dir", ("f", "e", "c"), lambda s: s.kwargs["manifest_dir"]
    ),
    Layered("verify", "upload.verify_mode", "--verify-mode", MODES, lambda s: s.kwargs["mode"]),
    Layered("books", "books.output_dir", "--output-dir", ("f", "e", "c")),
    Layered("books", "books.snapshot_interval_seconds", "--snapshot-interval", ("2.5", "3.5", "4.5")),
    Layered("books", "books.workers", "--workers", ("2", "3", "4")),
]


@pytest.mark.parametrize("case", LAYERED, ids=[f"{c.command}-{c.flag}" for c in LAYERED])
def test_the_file_then_the_environment_then_the_flag_reach_the_call(
    case: Layered, tmp_path: Path, spy_on: Callable[[Command, Any], Spy]
) -> None:
    command = COMMANDS[case.command]
    section, key = case.key.split(".")
    config = tmp_path / "pmws.yaml"
    extra = "  shard_count: 9\n" if case.key == "run.shard_index" else ""
    config.write_text(f"{section}:\n  {key}: {case.values[0]}\n{extra}")
    env = {f"PMWS_{section.upper()}__{key.upper()}": case.values[1]}
    layers = [
        ((), None, case.values[0]),
        ((), env, case.values[1]),
        ((case.flag, case.values[2]), env, case.values[2]),
    ]
    for flag, environment, expected in layers:
        spy = spy_on(command, command.ok())
        extra_args = () if case.flag in command.extra else command.extra
        result = invoke(case.command, *extra_args, "--config", str(config), *flag, env=environment)
        assert result.exit_code == 0, result.output
        seen = case.seen(spy) if case.seen else getattr(getattr(config_of(spy), section), key)
        assert str(seen) == expected, (flag, environment)


# --- each command's own flags -------------------------------------------------------------------------


@pytest.fixture
def simulator_seen(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Replaces the `--simulate` context (which would start a real simulator) and records its switch."""
    seen: list[bool] = []

    @contextlib.contextmanager
    def fake(config: Config, enabled: bool) -> Iterator[None]:
        seen.append(enabled)
        yield

    for module in ("pmws.cli.discover", "pmws.cli.base"):  # sample and run go through base.record
        monkeypatch.setattr(f"{module}.simulated", fake)
    return seen


@pytest.fixture
def views(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, object]]:
    """Replaces `live.console_view` (what `sample` and `run` show): records its `live` switch and view."""
    made: list[tuple[bool, object]] = []

    def fake(console: object, *, live: bool) -> object:
        view = object()
        made.append((live, view))
        return view

    monkeypatch.setattr("pmws.live.console_view", fake)
    return made


@pytest.mark.parametrize("simulate", [False, True])
def test_discover_passes_simulate(
    simulate: bool, simulator_seen: list[bool], spy_on: Callable[[Command, Any], Spy]
) -> None:
    spy = spy_on(COMMANDS["discover"], DISCOVERY)
    result = invoke("discover", *(["--simulate"] if simulate else []))
    assert result.exit_code == 0, result.output
    assert spy.kwargs == {"simulated": simulate} and simulator_seen == [simulate]
    assert "wrote latest.json" in result.stdout


@pytest.mark.parametrize(
    "flags,live,expected",
    [
        ((), True, {"discover_first": False, "simulated": False}),
        (("--no-live",), False, {"discover_first": False, "simulated": False}),
        (("--discover",), True, {"discover_first": True, "simulated": False}),
        (("--simulate",), True, {"discover_first": True, "simulated": True}),
    ],
)
def test_sample_passes_its_switches(
    flags: tuple[str, ...],
    live: bool,
    expected: dict[str, bool],
    simulator_seen: list[bool],
    views: list[tuple[bool, object]],
    spy_on: Callable[[Command, Any], Spy],
) -> None:
    spy = spy_on(COMMANDS["sample"], COMMANDS["sample"].ok())
    result = invoke("sample", *flags)
    assert result.exit_code == 0, result.output
    kwargs = spy.kwargs
    assert {k: kwargs[k] for k in expected} == expected
    assert views == [(live, kwargs["view"])] and simulator_seen == [expected["simulated"]]
    assert "manifest m.json" in result.stdout and "WS_RAW_SAMPLE_PASS" in result.stdout


def test_gate_session_reads_that_sessions_manifest(spy_on: Callable[[Command, Any], Spy]) -> None:
    spy = spy_on(COMMANDS["gate"], gate_outcome(Verdict.PASS))
    env = {"PMWS_SAMPLE__MANIFEST_PATH": "out/m.json"}
    result = invoke("gate", "--session", "20261124T015000Z-3fa2c1", env=env)
    assert result.exit_code == 0, result.output
    assert spy.args == (session_output("out/m.json", "20261124T015000Z-3fa2c1"),)


@pytest.mark.parametrize(
    "args,message",
    [
        (("--session", "s", "--manifest", "m.json"), "give --manifest or --session, not both"),
        (("--session", "../x"), "not a session id"),
    ],
)
def test_gate_refuses_a_bad_session_before_the_call(
    args: tuple[str, ...], message: str, spy_on: Callable[[Command, Any], Spy]
) -> None:
    spy = spy_on(COMMANDS["gate"], gate_outcome(Verdict.PASS))
    result = invoke("gate", *args)
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert spy.calls == []


@pytest.mark.parametrize("live", [True, False])
def test_run_passes_its_switches(
    live: bool,
    simulator_seen: list[bool],
    views: list[tuple[bool, object]],
    spy_on: Callable[[Command, Any], Spy],
) -> None:
    from pmws.cli.run import _announce

    spy = spy_on(COMMANDS["run"], SimpleNamespace(error=None))
    result = invoke("run", *([] if live else ["--no-live"]), "--simulate")
    assert result.exit_code == 0, result.output
    assert views == [(live, spy.kwargs["view"])] and spy.kwargs["on_ready"] is _announce
    assert simulator_seen == [True]
    assert result.stdout.splitlines()[-1] == '{"summary": true}'


def test_simulate_passes_its_flags(spy_on: Callable[[Command, Any], Spy]) -> None:
    spy = spy_on(COMMANDS["simulate"], None)
    args = [
        *("--host", "127.0.0.2", "--port", "8001", "--ws-port", "8002", "--markets-per-window", "4"),
        *("--no-record", "--rate", "5", "--drop-after-frames", "6", "--silent", "--pong-only"),
        *("--non-json-every", "7", "--binary-every", "8", "--unknown-event-every", "9"),
        *("--books-status", "429", "--books-retry-after", "1.5", "--books-delay-seconds", "2.5"),
    ]
    result = invoke("simulate", *args)
    assert result.exit_code == 0, result.output
    config, host, port, ws_port, _ = spy.args
    assert (host, port, ws_port) == ("127.0.0.2", 8001, 8002)
    assert (config.rate_per_second, config.markets_per_window, config.record_frames) == (5.0, 4, False)
    assert (config.tls_cert, config.tls_key) == (None, None)
    faults = config.faults
    assert (faults.drop_after_frames, faults.silent, faults.pong_only) == (6, True, True)
    assert (faults.send_non_json_every, faults.send_binary_every, faults.send_unknown_event_every) == (
        7,
        8,
        9,
    )
    assert (faults.books_status, faults.books_retry_after, faults.books_delay_seconds) == (429, 1.5, 2.5)


def test_simulate_on_ready_prints_and_writes_the_config(
    tmp_path: Path, spy_on: Callable[[Command, Any], Spy]
) -> None:
    spy = spy_on(COMMANDS["simulate"], None)
    written = tmp_path / "sim.yaml"
    result = invoke("simulate", "--write-config", str(written))
    assert result.exit_code == 0, result.output
    on_ready = spy.args[4]
    sim = SimpleNamespace(gamma_url="http://g", clob_url="http://c", ws_url="ws://w")
    on_ready(sim)
    text = written.read_text()
    assert "http://g" in text and "http://c" in text and "ws://w" in text


@pytest.mark.parametrize(
    "args,message",
    [
        (("--port", "70000"), "--port"),
        (("--rate", "-1"), "--rate"),
        (("--tls-key", "k.pem"), "--tls-key needs --tls-cert"),
        (("--config", "nope.yaml"), "nope.yaml"),
    ],
)
def test_simulate_refuses_bad_flags_before_serving(
    args: tuple[str, ...], message: str, spy_on: Callable[[Command, Any], Spy]
) -> None:
    spy = spy_on(COMMANDS["simulate"], None)
    result = invoke("simulate", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert spy.calls == []


def test_simulate_a_busy_port_is_a_config_error(spy_on: Callable[[Command, Any], Spy]) -> None:
    spy_on(COMMANDS["simulate"], OSError(98, "Address already in use"))
    result = invoke("simulate", "--port", "8001")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: cannot listen on 127.0.0.1 (--port 8001, --ws-port 0): Address already in use"
    ]


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("cleanup", [False, True])
def test_upload_passes_its_switches(
    dry_run: bool, cleanup: bool, spy_on: Callable[[Command, Any], Spy]
) -> None:
    spy = spy_on(COMMANDS["upload"], UploadReport(remote="r:"))
    flags = [*(["--dry-run"] if dry_run else []), *(["--cleanup-after-verify"] if cleanup else [])]
    result = invoke("upload", "--remote", "r:x", *flags, env={"PMWS_UPLOAD__LEDGER_PATH": "l.jsonl"})
    assert result.exit_code == 0, result.output
    settings = spy.args[0]
    assert (settings.remote, settings.ledger_path) == ("r:x", "l.jsonl")  # the whole `upload` section
    assert spy.kwargs == {"dry_run": dry_run, "cleanup_after_verify": cleanup, "progress": None}


def test_verify_passes_paths_and_settings(tmp_path: Path, spy_on: Callable[[Command, Any], Spy]) -> None:
    spy = spy_on(COMMANDS["verify"], passed_verify())
    config = tmp_path / "pmws.yaml"
    config.write_text("upload:\n  source: src\n  rclone_config: rc.conf\n")
    env = {"PMWS_UPLOAD__LEDGER_PATH": "l.jsonl", "PMWS_UPLOAD__RCLONE_BINARY": "/opt/rclone"}
    args = ["a.jsonl.gz", "dir", "--remote", "r:x", "--manifest", "m.json", "--repair-manifests"]
    result = invoke("verify", *args, "--config", str(config), env=env)
    assert result.exit_code == 0, result.output
    assert spy.args == ([Path("a.jsonl.gz"), Path("dir")],)
    kwargs = spy.kwargs
    assert kwargs["rclone"] == Rclone("/opt/rclone", "rc.conf")
    assert kwargs | {"rclone": None} == {
        "manifest_dir": Path(Config().upload.manifest_dir),
        "remote": "r:x",
        "sample_manifest": Path("m.json"),
        "source": Path("src"),
        "rclone": None,
        "mode": "auto",
        "ledger_path": Path("l.jsonl"),
        "repair": True,
    }


def test_verify_without_remote_makes_no_rclone(spy_on: Callable[[Command, Any], Spy]) -> None:
    spy = spy_on(COMMANDS["verify"], passed_verify())
    result = invoke("verify")
    assert result.exit_code == 0, result.output
    assert spy.args == ([],)
    assert (spy.kwargs["remote"], spy.kwargs["rclone"], spy.kwargs["repair"]) == (None, None, False)


def test_books_passes_paths_filters_and_manifest_dirs(spy_on: Callable[[Command, Any], Spy]) -> None:
    spy = spy_on(COMMANDS["books"], books_result(skipped=False))
    args = ["a", "b", "--manifest-dir", "m", "--token", "t1", "--slug", "s1", "--overwrite"]
    result = invoke("books", *args, "--start", "2026-11-24T01:00:00Z", "--end", "2026-11-24T02:00:00")
    assert result.exit_code == 0, result.output
    assert [str(p) for p in spy.args[1]] == ["a", "b"]
    filters = spy.kwargs["filters"]
    assert filters.tokens == {"t1"} and filters.slugs == {"s1"}
    one = int(datetime(2026, 11, 24, 1, tzinfo=UTC).timestamp()) * 10**9
    assert (filters.start_ns, filters.end_ns) == (one, one + 3600 * 10**9)  # no offset: UTC
    assert Path("m") == spy.kwargs["manifest_dirs"][0] and spy.kwargs["overwrite"] is True


def test_replay_passes_inputs_and_options(
    monkeypatch: pytest.MonkeyPatch, spy_on: Callable[[Command, Any], Spy]
) -> None:
    serve = spy_on(COMMANDS["replay"], None)
    built = Spy(SimpleNamespace(files=[]))
    monkeypatch.setattr("pmws.replay.load.build_replay", built)
    args = ["a", "b", "--host", "127.0.0.2", "--port", "8001", "--http-port", "8002", "--speed", "max"]
    result = invoke("replay", *args, "--start", "S", "--end", "E", "--discovery", "d.json")
    assert result.exit_code == 0, result.output
    assert [str(p) for p in built.args[0]] == ["a", "b"]
    assert {k: built.kwargs[k] for k in ("speed", "start", "end")} == {
        "speed": "max",
        "start": "S",
        "end": "E",
    }
    assert str(built.kwargs["discovery"]) == "d.json"
    assert serve.args[0] is built.result and serve.args[1:4] == ("127.0.0.2", 8001, 8002)


REPLAY_KEYS = [  # the config keys `pmws replay` reads (it has no flag for them): file, then environment
    ("upload.rclone_binary", lambda built: built.kwargs["rclone"].binary),
    ("upload.rclone_config", lambda built: built.kwargs["rclone"].config),
    ("run.manifest_dir", lambda built: str(built.kwargs["manifest_dirs"][-1])),
    ("run.output_dir", lambda built: str(built.args[0][0])),  # the default input, as for `pmws books`
]


@pytest.mark.parametrize(("key", "seen"), REPLAY_KEYS, ids=[key for key, _ in REPLAY_KEYS])
def test_replay_takes_its_keys_from_the_file_then_the_environment(
    key: str,
    seen: Callable[[Spy], Any],
    monkeypatch: pytest.MonkeyPatch,
    spy_on: Callable[[Command, Any], Spy],
) -> None:
    section, name = key.split(".")
    config = Path("pmws.yaml")
    config.write_text(f"{section}:\n  {name}: from-file\n")
    env = {f"PMWS_{section.upper()}__{name.upper()}": "from-env"}
    for environment, expected in ((None, "from-file"), (env, "from-env")):
        spy_on(COMMANDS["replay"], None)
        built = Spy(SimpleNamespace(files=[]))
        monkeypatch.setattr("pmws.replay.load.build_replay", built)
        result = invoke("replay", "--config", str(config), env=environment)
        assert result.exit_code == 0, result.output
        assert seen(built) == expected, environment


def test_replay_inputs_replace_the_configured_output_dir_and_rclone_defaults_to_the_users(
    monkeypatch: pytest.MonkeyPatch, spy_on: Callable[[Command, Any], Spy]
) -> None:
    spy_on(COMMANDS["replay"], None)
    built = Spy(SimpleNamespace(files=[]))
    monkeypatch.setattr("pmws.replay.load.build_replay", built)
    env = {"PMWS_RUN__OUTPUT_DIR": "recorded"}
    result = invoke("replay", "local", "archive:bucket/polymarket", env=env)
    assert result.exit_code == 0, result.output
    assert [str(p) for p in built.args[0]] == ["local", "archive:bucket/polymarket"]
    assert built.kwargs["rclone"] == Rclone("rclone", None)  # rclone on PATH, with the user's own config
    assert built.kwargs["manifest_dirs"] == [Path("raw_orderbooks/manifests")]
