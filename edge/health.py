"""The agent's health figures, served locally on `/metrics` (Prometheus) and `/status` (JSON).

The same figures go to the broker every status interval (see `EdgeAgent`), so a demo centre sees
every device on the dashboard, and a technician on site can still ask a device that has lost its
network: `curl http://127.0.0.1:9108/metrics` or `shopfloor edge status`. `/health` answers 503
with the causes when the agent is degraded, as a watchdog expects.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

from shopfloor.messages import EdgeStatus, encode_edge
from shopfloor.prometheus import CONTENT_TYPE, Family, Sample, render

log = logging.getLogger(__name__)

_HELP: dict[str, tuple[Literal["counter", "gauge"], str]] = {
    "uptime_s": ("gauge", "seconds since the agent started"),
    "readings_total": ("counter", "readings accepted into the disk queue"),
    "readings_per_s": ("gauge", "readings accepted per second over the last status interval"),
    "forwarded_total": ("counter", "messages the broker acknowledged"),
    "queue_depth": ("gauge", "messages waiting on disk for the broker"),
    "queue_bytes": ("gauge", "bytes waiting on disk for the broker"),
    "dropped_total": ("counter", "messages dropped by the queue's size or age bound"),
    "lost_total": ("counter", "readings lost because the queue could not be written"),
    "rejected_total": ("counter", "sensor payloads, OPC UA and Modbus values that held no reading"),
    "broker_connected": ("gauge", "1 while connected to the broker"),
    "broker_reconnects": ("counter", "connections to the broker lost"),
    "sources_connected": ("gauge", "OPC UA servers and Modbus devices connected (answering)"),
    "sources_total": ("gauge", "OPC UA servers and Modbus devices configured"),
    "source_reconnects": ("counter", "failed or lost OPC UA and Modbus connections"),
    "oldest_queued_s": ("gauge", "seconds the oldest queued message has waited"),
    "receiving": ("gauge", "1 while the MQTT network thread runs"),
}


def prometheus_text(status: EdgeStatus) -> str:
    """The status in Prometheus' text exposition format, labelled with the device."""
    device = {"device": status.device}
    values = status.model_dump()
    families = [
        Family(f"shopfloor_edge_{field}", kind, help_text, [Sample(values[field], device)])
        for field, (kind, help_text) in _HELP.items()
    ]
    families += [
        Family(
            "shopfloor_edge_healthy",
            "gauge",
            "1 while no cause degrades the agent",
            [Sample(not status.causes, device)],
        ),
        Family(
            "shopfloor_edge_degraded",
            "gauge",
            "1 for each cause that degrades the agent now",
            [Sample(1, {**device, "cause": cause}) for cause in status.causes],
        ),
        Family(
            "shopfloor_edge_source_errors_total",
            "counter",
            "Modbus requests unanswered (timeout) or refused (exception <code>), by device",
            [
                Sample(count, {**device, "source": source, "kind": kind})
                for source, errors in status.source_errors.items()
                for kind, count in errors.items()
            ],
        ),
    ]
    return render(families)


class MetricsServer:
    """A small HTTP server in a daemon thread; the agent never waits for it."""

    def __init__(self, status: Callable[[], EdgeStatus], host: str, port: int):
        handler = _handler(status)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("health figures on http://%s:%d/metrics", *self.httpd.server_address[:2])

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(status: Callable[[], EdgeStatus]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = self.path.split("?")[0]
            if page == "/metrics":
                body, content_type = prometheus_text(status()).encode(), CONTENT_TYPE
            elif page == "/status":
                body, content_type = encode_edge(status()), "application/json"
            elif page == "/health":
                causes = status().causes
                health = {"status": "degraded" if causes else "ok", "causes": causes}
                self._answer(
                    503 if causes else 200, json.dumps(health).encode(), "application/json"
                )
                return
            else:
                self.send_error(404, "try /metrics, /status or /health")
                return
            self._answer(200, body, content_type)

        def _answer(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("metrics: " + format, *args)

    return Handler
