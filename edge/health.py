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

from shopfloor.messages import EdgeStatus, encode_edge

log = logging.getLogger(__name__)

PROMETHEUS_TEXT = "text/plain; version=0.0.4"
_HELP = {
    "uptime_s": ("gauge", "seconds since the agent started"),
    "readings_total": ("counter", "readings accepted into the disk queue"),
    "readings_per_s": ("gauge", "readings accepted per second over the last status interval"),
    "forwarded_total": ("counter", "messages the broker acknowledged"),
    "queue_depth": ("gauge", "messages waiting on disk for the broker"),
    "queue_bytes": ("gauge", "bytes waiting on disk for the broker"),
    "dropped_total": ("counter", "messages dropped by the queue's size or age bound"),
    "lost_total": ("counter", "readings lost because the queue could not be written"),
    "rejected_total": ("counter", "sensor payloads and OPC UA values that held no reading"),
    "broker_connected": ("gauge", "1 while connected to the broker"),
    "broker_reconnects": ("counter", "connections to the broker lost"),
    "sources_connected": ("gauge", "OPC UA servers connected"),
    "sources_total": ("gauge", "OPC UA servers configured"),
    "source_reconnects": ("counter", "failed or lost OPC UA connections"),
    "oldest_queued_s": ("gauge", "seconds the oldest queued message has waited"),
    "receiving": ("gauge", "1 while the MQTT network thread runs"),
}


def prometheus_text(status: EdgeStatus) -> str:
    """The status in Prometheus' text exposition format, labelled with the device."""
    lines = []
    values = status.model_dump()
    for field, (kind, help_text) in _HELP.items():
        name = f"shopfloor_edge_{field}"
        lines += [
            f"# HELP {name} {help_text}",
            f"# TYPE {name} {kind}",
            f'{name}{{device="{status.device}"}} {_number(values[field])}',
        ]
    lines += [
        "# HELP shopfloor_edge_healthy 1 while no cause degrades the agent",
        "# TYPE shopfloor_edge_healthy gauge",
        f'shopfloor_edge_healthy{{device="{status.device}"}} {int(not status.causes)}',
        "# HELP shopfloor_edge_degraded 1 for each cause that degrades the agent now",
        "# TYPE shopfloor_edge_degraded gauge",
        *(
            f'shopfloor_edge_degraded{{device="{status.device}",cause="{cause}"}} 1'
            for cause in status.causes
        ),
    ]
    return "\n".join(lines) + "\n"


def _number(value: float | int | bool) -> str:
    """Counters exactly (a rounded 1.23457e+06 would hide a change), gauges as they are."""
    return str(int(value)) if isinstance(value, bool | int) else repr(float(value))


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
                body, content_type = prometheus_text(status()).encode(), PROMETHEUS_TEXT
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
