"""The agent's health figures, served locally on `/metrics` (Prometheus) and `/status` (JSON).

The same figures go to the broker every status interval (see `EdgeAgent`), so a demo centre sees
every device on the dashboard, and a technician on site can still ask a device that has lost its
network: `curl http://127.0.0.1:9108/metrics` or `shopfloor edge status`.
"""

from __future__ import annotations

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
    "rejected_total": ("counter", "sensor payloads that held no reading"),
    "broker_connected": ("gauge", "1 while connected to the broker"),
    "broker_reconnects": ("counter", "connections to the broker lost"),
    "sources_connected": ("gauge", "OPC UA servers connected"),
    "sources_total": ("gauge", "OPC UA servers configured"),
    "source_reconnects": ("counter", "failed or lost OPC UA connections"),
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
            else:
                self.send_error(404, "try /metrics or /status")
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("metrics: " + format, *args)

    return Handler
