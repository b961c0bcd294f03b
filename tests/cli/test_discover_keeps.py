"""`pmws discover` never replaces a good discovery file with an empty one (respx stands in for Gamma)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import respx
from typer.testing import CliRunner

from pmws.cli import app
from tests.conftest import no_traceback

URL = "http://gamma.test"
LATEST = Path("data/discovery/polymarket_btc_markets_latest.json")
GOOD = {"markets": [{"market_slug": "btc-updown-5m-1"}], "simulated": False}


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (httpx.Response(200, json={"markets": []}), "no live BTC up/down market"),
        (httpx.Response(200, json={"error": "maintenance"}), "Gamma answered object with keys ['error']"),
        (httpx.Response(200, json=[]), "Gamma answered list"),
        (
            httpx.Response(200, json={"markets": [{"slug": "eth-updown-5m-x", "junk": True}]}),
            "not BTC up/down",
        ),
    ],
)
@respx.mock
def test_an_empty_or_junk_answer_keeps_the_previous_file(
    tmp_path: Path, answer: httpx.Response, why: str
) -> None:
    LATEST.parent.mkdir(parents=True)
    LATEST.write_text(json.dumps(GOOD))
    respx.get(f"{URL}/markets").mock(return_value=httpx.Response(200, json=[]))  # the slug pass
    respx.get(f"{URL}/markets/keyset").mock(return_value=answer)  # the listing
    config = tmp_path / "c.yaml"
    config.write_text(f"endpoints:\n  gamma_url: {URL}\n")
    result = CliRunner().invoke(app, ["discover", "--config", str(config)])
    assert result.exit_code == 1, result.output
    assert why in result.output and f"kept {LATEST}" in result.output
    assert no_traceback(result)
    assert json.loads(LATEST.read_text()) == GOOD
    assert sorted(p.name for p in LATEST.parent.iterdir()) == [LATEST.name]
