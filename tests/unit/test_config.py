"""Config precedence (defaults < file < env < CLI) and errors that name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pmws.config import load_config
from pmws.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_precedence(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sample:\n  market_limit: 3\n  duration_seconds: 30\nendpoints:\n  ws_url: ws://file\n",
    )
    config = load_config(
        path,
        env={"PMWS_SAMPLE__DURATION_SECONDS": "40", "PMWS_ENDPOINTS__WS_URL": "ws://env"},
        overrides={"sample.duration_seconds": 50.0, "sample.market_limit": None},
    )
    assert config.sample.market_limit == 3
    assert config.sample.duration_seconds == 50.0
    assert config.endpoints.ws_url == "ws://env"
    assert config.endpoints.gamma_url == "https://gamma-api.polymarket.com"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sample:\n  market_limt: 2\n", "unknown key 'sample.market_limt'"),
        ("sampel:\n  market_limit: 2\n", "unknown key 'sampel'"),
        ("sample:\n  market_limit: two\n", "'sample.market_limit' must be an integer"),
        ("sample:\n  duration_seconds: [1]\n", "'sample.duration_seconds' must be a number"),
        (
            "websocket:\n  custom_feature_enabled: maybe\n",
            "'websocket.custom_feature_enabled' must be true or false",
        ),
        ("sample: 3\n", "'sample' must be a mapping"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("sample: [\n", "not valid YAML at line"),
    ],
)
def test_bad_files_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_bad_env_names_the_variable() -> None:
    with pytest.raises(
        ConfigError, match="PMWS_REST__TIMEOUT_SECONDS.*'rest.timeout_seconds' must be a number"
    ):
        load_config(None, env={"PMWS_REST__TIMEOUT_SECONDS": "soon"})
    with pytest.raises(ConfigError, match="unknown key 'rest.nope'"):
        load_config(None, env={"PMWS_REST__NOPE": "1"})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml", env={})


def test_list_from_env() -> None:
    assert load_config(None, env={"PMWS_DISCOVERY__WINDOWS": "5m,15m"}).discovery.windows == [
        "5m",
        "15m",
    ]


def test_read_batch_ms_out_of_range_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"websocket.read_batch_ms' must be between 0 and 1000"):
        load_config(env={"PMWS_WEBSOCKET__READ_BATCH_MS": "5000"})
    assert load_config(env={"PMWS_WEBSOCKET__READ_BATCH_MS": "20"}).websocket.read_batch_ms == 20


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PMWS_DISCOVERY__PAGE_LIMIT", "101", "'discovery.page_limit' must be between 1 and 100"),
        ("PMWS_DISCOVERY__PAGE_LIMIT", "0", "'discovery.page_limit' must be between 1 and 100"),
        ("PMWS_REST__BATCH_SIZE", "501", "'rest.batch_size' must be between 1 and 500"),
    ],
)
def test_page_limit_and_batch_size_stay_within_what_the_endpoints_take(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(env={variable: value})


def test_handoff_batch_ms_defaults_to_100_and_is_bounded() -> None:
    assert load_config().websocket.handoff_batch_ms == 100
    with pytest.raises(ConfigError, match=r"websocket.handoff_batch_ms' must be between 0 and 1000"):
        load_config(env={"PMWS_WEBSOCKET__HANDOFF_BATCH_MS": "5000"})
    assert load_config(env={"PMWS_WEBSOCKET__HANDOFF_BATCH_MS": "0"}).websocket.handoff_batch_ms == 0
