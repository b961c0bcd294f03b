"""The CLI surface: help for every command, README coverage, exit codes, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from pmws import __version__
from pmws.cli import app
from tests.conftest import TIME_FACTOR, no_traceback

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["discover", "sample", "gate", "run", "upload", "verify", "simulate", "books", "replay"]


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"pmws {__version__}"


@pytest.mark.parametrize("flag", ["-h", "--help"])
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(command: str, flag: str) -> None:
    result = invoke(command, flag)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: pmws {command} ")
    assert "<bool>" not in result.output and "BOOLEAN" not in result.output
    assert f"`pmws {command}`" in (ROOT / "README.md").read_text()


def test_the_app_help_lists_every_command() -> None:
    result = invoke("-h")
    assert result.exit_code == 0 and "-h, --help" in result.output
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()]
    assert sorted(listed) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_that_takes_a_value_shows_its_default(command: str) -> None:
    click_command = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    for param in click_command.params:
        if isinstance(param, click.Option) and not param.is_flag and param.name != "help":
            assert param.show_default or param.default is not None, f"{command} --{param.name}"
    assert "[default:" in invoke(command, "--help").output


@pytest.mark.parametrize("command", ["discover", "sample", "gate", "run", "replay"])
def test_config_errors_exit_2_naming_file_and_key(command: str, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("sample:\n  market_limit: lots\n")
    result = invoke(command, "--config", str(config))
    assert result.exit_code == 2, result.output
    assert f"{config}: 'sample.market_limit' must be an integer" in result.output
    assert no_traceback(result)


def test_env_override_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMWS_SAMPLE__DURATION_SECONDS", "forever")
    result = invoke("sample")
    assert result.exit_code == 2 and "PMWS_SAMPLE__DURATION_SECONDS" in result.output


def test_malformed_discovery_file_is_one_line(tmp_path: Path) -> None:
    target = Path("data/discovery/polymarket_btc_markets_latest.json")
    target.parent.mkdir(parents=True)
    target.write_text("{not json")
    result = invoke("sample", "--no-live")
    assert result.exit_code == 1
    assert "not valid JSON; re-run `pmws discover`" in result.output and no_traceback(result)


def test_gate_on_a_missing_manifest() -> None:
    result = invoke("gate", "--manifest", "nope.json")
    assert result.exit_code == 1 and "manifest not found" in result.output


def test_unreachable_gamma_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "endpoints:\n  gamma_url: http://127.0.0.1:9\ndiscovery:\n  request_timeout_seconds: 2\n"
    )
    result = invoke("discover", "--config", str(config))
    assert result.exit_code == 1, result.output
    assert "cannot reach http://127.0.0.1:9/markets" in result.output and no_traceback(result)


def pmws_process(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real `pmws` process: what a user's terminal shows, traceback included."""
    environ = {k: v for k, v in os.environ.items() if k != "PMWS_DEBUG"} | (env or {})
    command = [sys.executable, "-m", "pmws", *args]
    return subprocess.run(
        command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=60 * TIME_FACTOR
    )


@pytest.mark.parametrize("how", ["--debug", "PMWS_DEBUG=1"])
def test_debug_shows_the_traceback_and_its_cause(tmp_path: Path, how: str) -> None:
    args = ("gate", "--manifest", "nope.json")
    plain = pmws_process(*args, cwd=tmp_path)
    assert plain.returncode == 1
    assert plain.stderr.splitlines() == ["error: nope.json: manifest not found"]
    assert "Traceback" not in plain.stderr + plain.stdout

    flag = ("--debug",) if how == "--debug" else ()
    env = {"PMWS_DEBUG": "1"} if how != "--debug" else None
    debug = pmws_process(*args, *flag, cwd=tmp_path, env=env)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert "pmws.errors.ArchiveError: nope.json: manifest not found" in debug.stderr
    # the cause survives (`raise ... from exc`): the OS error that started it is in the traceback
    assert "FileNotFoundError" in debug.stderr
    assert "The above exception was the direct cause of the following exception" in debug.stderr


@pytest.mark.parametrize("value", ["no", "false", "False", "off", "0"])
def test_debug_off_values_of_pmws_debug_show_no_traceback(tmp_path: Path, value: str) -> None:
    plain = pmws_process("gate", "--manifest", "nope.json", cwd=tmp_path, env={"PMWS_DEBUG": value})
    assert plain.returncode == 1 and plain.stderr.splitlines() == ["error: nope.json: manifest not found"]
