"""Prometheus metrics and health endpoints for `pmws run`, served from a small thread.

Counters are read from the recorder at scrape time (one source of truth, no double bookkeeping).
`/healthz`: the event loop ticked recently. `/readyz`: every connection is subscribed and fresh.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_PATH, HEALTH_PATH, READY_PATH = "/metrics", "/healthz", "/readyz"


class RecorderCollector(Collector):
    """Turns `sample()` (name → (kind, help, value or {labels: value})) into metric families."""

    def __init__(self, sample: Callable[[], dict[str, tuple[str, str, Any]]]):
        self.sample = sample

    def collect(self) -> Iterator[Metric]:
        for name, (kind, help_text, value) in self.sample().items():
            family_type = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            if isinstance(value, dict):  # {((label, value), ...): number}
                labels = [label for label, _ in next(iter(value))] if value else []
                family = family_type(name, help_text, labels=labels)
                for label_items, number in value.items():
                    family.add_metric([v for _, v in label_items], number)
            else:
                family = family_type(name, help_text, value=value)
            yield family


class HealthServer:
    """`/metrics`, `/healthz`, `/readyz` on host:port (port 0 picks a free one)."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        healthy: Callable[[], bool],
        ready: Callable[[], tuple[bool, str]],
    ):
        handler = _handler(registry, healthy, ready)
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="pmws-metrics", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(
    registry: CollectorRegistry, healthy: Callable[[], bool], ready: Callable[[], tuple[bool, str]]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == METRICS_PATH:
                self._send(200, generate_latest(registry), CONTENT_TYPE)
            elif path == HEALTH_PATH:
                ok = healthy()
                self._send(200 if ok else 503, b"ok\n" if ok else b"event loop stalled\n")
            elif path == READY_PATH:
                ok, why = ready()
                self._send(200 if ok else 503, (why + "\n").encode())
            else:
                self._send(404, b"not found\n")

        def _send(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access logs
            return

    return Handler
