"""`pmws run`: the long-running recorder (orderbooks-ws-recorder in Kubernetes). Wiring only.

The shell (recorder.py: links, REST checkpoints, supervision, snapshot) is the one `sample` uses; the run
policy (continuous.py: rediscovery, rotation, book verification, coverage) is passed into it. Here: the
output lock, salvage on start, the metrics server, and the order things start and stop in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from pmws.archive.rotating import RotatingArchive
from pmws.archive.salvage import repair_manifests, salvage_orphans
from pmws.config import Config
from pmws.continuous import Recorder
from pmws.discover import http_client
from pmws.errors import ArchiveError, ConfigError, PmwsError
from pmws.lock import acquire
from pmws.manifest import FileManifest
from pmws.metrics import HealthServer, RecorderCollector
from pmws.recorder import NoView, ViewFactory
from pmws.sharding import resolve_shard
from pmws.signals import stop_on_signals
from pmws.transfer.backlog import BacklogGauges, closed_bytes_sample

__all__ = ["Recorder", "RunOutcome", "StartRecovery", "run_recorder", "summary_json"]


@dataclass
class RunOutcome:
    session_id: str
    files_closed: int
    salvaged: list[FileManifest]
    error: PmwsError | None
    counters: dict[str, int] = field(default_factory=dict)
    recovery: StartRecovery | None = None


@dataclass
class StartRecovery:
    """What a start found and fixed before recording: salvaged orphans, repaired manifests, problems."""

    salvaged: list[FileManifest] = field(default_factory=list)
    repaired: list[FileManifest] = field(default_factory=list)
    left_alone: list[str] = field(default_factory=list)  # `.open` files of live sessions (other shards)
    problems: list[str] = field(default_factory=list)  # could not be recovered: left untouched

    def record(self) -> dict[str, Any]:
        """The `startup_recovery` lifecycle line (written first into the new session's stream)."""
        return {
            "record_type": "lifecycle",
            "event": "startup_recovery",
            "salvaged": [m.file for m in self.salvaged],
            "repaired_manifests": [m.file for m in self.repaired],
            "left_alone": self.left_alone,
            "problems": self.problems,
        }


async def run_recorder(
    config: Config,
    *,
    view: ViewFactory = NoView,
    stop: asyncio.Event | None = None,
    session_id: str | None = None,
    on_ready: Callable[[Recorder, HealthServer | None], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RunOutcome:
    """Record until stopped (SIGTERM/SIGINT or `stop`); salvage orphans first. `view` shows progress."""
    stop = stop or asyncio.Event()
    with stop_on_signals(stop):  # from the first moment: a SIGTERM during salvage still ends cleanly
        return await _record(
            config, view=view, stop=stop, session_id=session_id, on_ready=on_ready, clock=clock
        )


async def _record(
    config: Config,
    *,
    view: ViewFactory,
    stop: asyncio.Event,
    session_id: str | None,
    on_ready: Callable[[Recorder, HealthServer | None], None] | None,
    clock: Callable[[], datetime],
) -> RunOutcome:
    from pmws.layout import new_session_id

    root, manifests = Path(config.run.output_dir), Path(config.run.manifest_dir)
    session_id = session_id or new_session_id()
    index, count = resolve_shard(config, os.environ)
    # The output lock comes before anything is touched (salvage, metrics port): a second recorder of the
    # same shard stops here, naming the first, instead of salvaging its live files.
    with acquire(
        [root, manifests],
        owner=f"run-shard-{index}of{count}",
        session_id=session_id,
        command="pmws run",
        session_root=root,
    ):
        _check_writable(root, manifests)
        recovery = recover_outputs(root, manifests, config)
        recorder = Recorder(config, stop=stop, session_id=session_id, clock=clock)
        server = _start_metrics(config, recorder)
        try:
            if on_ready is not None:
                on_ready(recorder, server)
            return await _serve(recorder, config, view=view, recovery=recovery)
        finally:
            recorder.tracker.close()  # after the archives closed (their counters synced): stop the worker
            if server is not None:
                server.stop()


def recover_outputs(root: Path, manifests: Path, config: Config) -> StartRecovery:
    """Salvage orphans whose writer is gone, then give manifest-less closed archives their manifest."""
    salvage = salvage_orphans(root, manifest_dir=manifests, settings=config.archive)
    repair = repair_manifests(root, manifests)
    return StartRecovery(
        salvaged=salvage.salvaged,
        repaired=repair.repaired,
        left_alone=[str(p) for p in salvage.live],
        problems=salvage.problems + repair.problems,
    )


async def _serve(
    recorder: Recorder, config: Config, *, view: ViewFactory, recovery: StartRecovery
) -> RunOutcome:
    error: PmwsError | None = None
    async with http_client(config, timeout=config.rest.timeout_seconds) as client:
        first = await recorder.discover_once(client)  # unreachable Gamma at start: one clear error
        with view(recorder.snapshot, config.run.status_interval_seconds) as shown:
            recorder.ws.roll_if_due()
            recorder.rest_archive.roll_if_due()
            if recovery.salvaged or recovery.repaired or recovery.problems or recovery.left_alone:
                recorder.write_record(recovery.record(), time.time_ns())
            await recorder.apply(recorder.desired(first))
            loops = [recorder.discovery_loop(client), recorder.rest_loop(client), recorder.rotation_loop()]
            try:
                error = await recorder.shell.serve(loops, shown, errors=recorder.archive_error)
            finally:
                with contextlib.suppress(ArchiveError):  # the links stopped: the last frames' divergences
                    recorder.write_divergences(time.time_ns(), sync=True)
                error = await _close(recorder.ws, recorder.rest_archive, error=error)
    files = len(recorder.ws.closed_files) + len(recorder.rest_archive.closed_files)
    return RunOutcome(
        recorder.session_id, files, recovery.salvaged, error, recorder.counters(), recovery=recovery
    )


async def _close(*archives: RotatingArchive, error: PmwsError | None) -> PmwsError | None:
    """Close every archive (each tried); the first error wins."""
    for archive in archives:
        try:
            await archive.close()
        except ArchiveError as exc:
            error = error or exc
    return error


def _start_metrics(config: Config, recorder: Recorder) -> HealthServer | None:
    if not config.metrics.enabled:
        return None
    registry = CollectorRegistry()
    registry.register(RecorderCollector(recorder.metrics_sample))
    backlog = BacklogGauges(Path(config.run.output_dir), Path(config.upload.ledger_path))
    registry.register(RecorderCollector(backlog.sample))
    registry.register(RecorderCollector(lambda: closed_bytes_sample([recorder.ws, recorder.rest_archive])))
    try:
        server = HealthServer(
            config.metrics.host,
            config.metrics.port,
            registry,
            healthy=lambda: time.monotonic() - recorder.heartbeat < 10,
            ready=recorder.ready,
        )
    except OSError as exc:
        raise ConfigError(
            f"metrics.port {config.metrics.port}: cannot listen on {config.metrics.host} ({exc.strerror})"
        ) from exc
    return server.start()


def _check_writable(*directories: Path) -> None:
    for directory in directories:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe = directory / f".pmws-write-test-{os.getpid()}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise ArchiveError(f"{directory}: not writable ({exc.strerror or exc})") from exc


def summary_json(outcome: RunOutcome) -> str:
    return orjson.dumps(
        {
            "session_id": outcome.session_id,
            "files_closed": outcome.files_closed,
            "salvaged": len(outcome.salvaged),
            "repaired_manifests": len(outcome.recovery.repaired) if outcome.recovery else 0,
            "recovery_problems": outcome.recovery.problems if outcome.recovery else [],
            "counters": outcome.counters,
        }
    ).decode()
