"""The simulator's websocket over TLS (wss://) with a self-signed certificate, and pmws recording over it.

pmws connects with websockets' default SSL context, so SSL_CERT_FILE=<cert> is all a client needs to trust it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from pmws.protocol import subscribe_message
from pmws.sim import SimConfig, Simulator
from pmws.sim.tls import self_signed_cert
from tests.conftest import TIME_FACTOR
from tests.e2e.conftest import load_json, read_jsonl_gz
from tests.e2e.test_sample import MANIFEST, outputs, run_sample


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path / "tls")


@pytest.fixture
def tls_sim(cert: tuple[Path, Path]) -> Iterator[Any]:
    config = SimConfig(rate_per_second=80.0, tls_cert=str(cert[0]), tls_key=str(cert[1]))
    handle = Simulator(config).run_in_thread()
    try:
        yield handle
    finally:
        handle.stop()


def test_sample_records_every_frame_over_wss_trusting_the_cert_via_ssl_cert_file(
    tmp_path: Path, tls_sim: Any, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_sim.ws_url.startswith("wss://127.0.0.1:") and tls_sim.ws_url.endswith("/ws/market")
    assert tls_sim.gamma_url.startswith("http://")  # only the websocket is served over TLS
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    tls_sim.sim.faults.drop_after_frames = 40  # the drop fault over TLS: close_notify, no close frame
    result = run_sample(tmp_path, tls_sim, "--market-limit", "1")
    assert result.exit_code == 0, result.output
    manifest = load_json(MANIFEST)
    assert manifest["gate"]["verdict"] == "WS_RAW_SAMPLE_PASS"
    assert manifest["reconnects"] >= 1
    envelopes = read_jsonl_gz(outputs(manifest)["ws_raw"])
    sent = [f.payload for f in tls_sim.sim.sent_frames]
    assert len(sent) > 40
    assert [e["raw_text"].encode() for e in envelopes] == sent  # every frame, once, byte-identical


def test_an_untrusted_certificate_is_refused_and_a_trusted_one_streams(
    tls_sim: Any, cert: tuple[Path, Path]
) -> None:
    tokens = json.loads(tls_sim.sim.markets()[0]["clobTokenIds"])

    async def main() -> None:
        with pytest.raises(ssl.SSLCertVerificationError):  # the system's trust store, as pmws has by default
            async with connect(tls_sim.ws_url, ssl=ssl.create_default_context()):
                pass
        trusted = ssl.create_default_context(cafile=str(cert[0]))
        async with connect(tls_sim.ws_url, ssl=trusted, close_timeout=1) as ws:
            await ws.send(subscribe_message(tokens))
            first = await asyncio.wait_for(ws.recv(), 5 * TIME_FACTOR)
            assert isinstance(first, str) and first.startswith("[")  # the initial book dump

    asyncio.run(main())


def test_read_batching_over_wss_loses_nothing(
    tmp_path: Path, tls_sim: Any, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pausing a TLS transport leaves records in the SSL layer; they must all come out after the pause.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    result = run_sample(tmp_path, tls_sim, "--market-limit", "1", websocket={"read_batch_ms": 150})
    assert result.exit_code == 0, result.output
    envelopes = read_jsonl_gz(outputs(load_json(MANIFEST))["ws_raw"])
    assert [e["raw_text"].encode() for e in envelopes] == [f.payload for f in tls_sim.sim.sent_frames]
    stamps = [e["received_at_ns"] for e in envelopes]
    assert sum(b - a > 100_000_000 for a, b in zip(stamps, stamps[1:], strict=False)) >= 5
