"""`pmws discover` against a simulator listing as many open markets as Polymarket does today (§6.1).

The legacy offset listing refuses offsets past 2,000, so only keyset paging reaches every BTC window.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pmws.sim import SimConfig
from tests.conftest import no_traceback
from tests.e2e.conftest import invoke, load_json, write_config

LOOKAHEAD = 86400
FILLERS = 2500


@pytest.fixture
def sim_config() -> SimConfig:
    # 300 windows of each length cover the 24 h lookahead even for 5m windows
    return SimConfig(rate_per_second=5.0, filler_markets=FILLERS, markets_per_window=300)


def btc_windows_ending_within(sim: Any, start: float, lookahead: int) -> set[str]:
    """Slugs of the open BTC windows the simulator lists that end within (start, start + lookahead]."""
    out = set()
    for market in sim.sim.markets():
        ends = datetime.fromisoformat(market["endDate"].replace("Z", "+00:00")).timestamp()
        btc = market["slug"].startswith(("btc-updown-", "bitcoin-up-or-down-"))
        if btc and not market["closed"] and start < ends <= start + lookahead:
            out.add(market["slug"])
    return out


def test_discovery_over_2500_open_markets_finds_every_btc_window(tmp_path: Path, sim: Any) -> None:
    config = write_config(
        tmp_path / "c.yaml",
        sim,
        discovery={"lookahead_seconds": LOOKAHEAD, "output_dir": str(tmp_path / "disc")},
    )
    result = invoke("discover", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "(0 failed)" in result.output
    document = load_json(tmp_path / "disc" / "polymarket_btc_markets_latest.json")
    assert document["counts"]["objects_seen"] > 2500 + 300
    found = {m["market_slug"] for m in document["markets"]}
    generated = datetime.fromisoformat(document["generated_at_utc"].replace("Z", "+00:00")).timestamp()
    expected = btc_windows_ending_within(sim, generated + 5, LOOKAHEAD - 10)  # margin: the clock moved on
    assert len(expected) > 400 and expected <= found
    assert all(s.startswith(("btc-updown-", "bitcoin-up-or-down-")) for s in found)


def test_wrong_shaped_listing_fails_discover_and_keeps_the_good_file(tmp_path: Path, sim: Any) -> None:
    config = write_config(tmp_path / "c.yaml", sim, discovery={"output_dir": str(tmp_path / "disc")})
    assert invoke("discover", "--config", str(config)).exit_code == 0
    latest = tmp_path / "disc" / "polymarket_btc_markets_latest.json"
    good = latest.read_bytes()
    sim.sim.faults.gamma_wrong_shape = True
    result = invoke("discover", "--config", str(config))
    assert result.exit_code == 1, result.output
    assert "/markets/keyset: Gamma answered list" in result.output and no_traceback(result)
    assert latest.read_bytes() == good
