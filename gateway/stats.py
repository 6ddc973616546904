"""The gateway's running figures: what its /metrics page and health check report.

The service counts; the HTTP API reads a consistent snapshot. Write latency is a histogram with
fixed buckets, as Prometheus expects, so p50/p99 can be read from any scrape. Health is judged
from the same snapshot: each cause of a degraded gateway has its own figure.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class GatewayStats:
    """A snapshot of the gateway's figures since it started."""

    messages_in: int
    points_written: int
    dead_lettered: dict[str, int]  # by reason class: not_json, bad_field, unknown_asset, ...
    buffer_depth: int  # batches spilled to disk, waiting for the store
    buffer_dropped: int  # spilled batches dropped by the buffer's size or age bound
    write_latency_buckets: dict[float, int]  # cumulative counts per upper bound, in seconds
    write_latency_sum_s: float
    write_latency_count: int
    broker_connected: bool
    store_ok: bool  # the last write (or probe) succeeded
    receiving: bool  # the MQTT network thread runs
    writing: bool  # the store writer thread runs
    unwritten_age_s: float  # since the oldest message received and not yet stored came
    max_lag_s: float  # past this, ingest lags
    receive_errors: int  # messages the receive path could not take (a defect; never expected)

    def checks(self) -> dict[str, bool]:
        """Each cause that can degrade the gateway, and whether it does now."""
        return {
            "receive_thread_dead": not self.receiving,
            "writer_thread_dead": not self.writing,
            "broker_disconnected": not self.broker_connected,
            "store_failing": not self.store_ok,
            "ingest_lagging": self.unwritten_age_s > self.max_lag_s,
        }

    @property
    def causes(self) -> list[str]:
        """Why the gateway is degraded; empty when it is healthy."""
        return [cause for cause, failed in self.checks().items() if failed]


@dataclass
class StatsRecorder:
    """Thread-safe counters the service updates and the API snapshots."""

    messages_in: int = 0
    points_written: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    store_ok: bool = True
    receive_errors: int = 0
    _latencies: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_S))
    _latency_sum: float = 0.0
    _latency_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, messages: int = 1) -> None:
        with self._lock:
            self.messages_in += messages

    def dead_letter(self, reason_class: str) -> None:
        with self._lock:
            self.dead_lettered[reason_class] += 1

    def wrote(self, points: int, seconds: float) -> None:
        with self._lock:
            self.points_written += points
            self.store_ok = True
            self._latency_sum += seconds
            self._latency_count += 1
            for index, bound in enumerate(LATENCY_BUCKETS_S):
                if seconds <= bound:
                    self._latencies[index] += 1

    def write_failed(self) -> None:
        with self._lock:
            self.store_ok = False

    def store_back(self) -> None:
        with self._lock:
            self.store_ok = True

    def receive_error(self) -> None:
        with self._lock:
            self.receive_errors += 1

    def snapshot(
        self,
        buffer_depth: int,
        buffer_dropped: int,
        *,
        broker_connected: bool,
        receiving: bool,
        writing: bool,
        unwritten_age_s: float,
        max_lag_s: float,
    ) -> GatewayStats:
        with self._lock:
            return GatewayStats(
                messages_in=self.messages_in,
                points_written=self.points_written,
                dead_lettered=dict(self.dead_lettered),
                buffer_depth=buffer_depth,
                buffer_dropped=buffer_dropped,
                write_latency_buckets=dict(zip(LATENCY_BUCKETS_S, self._latencies, strict=True)),
                write_latency_sum_s=self._latency_sum,
                write_latency_count=self._latency_count,
                broker_connected=broker_connected,
                store_ok=self.store_ok,
                receiving=receiving,
                writing=writing,
                unwritten_age_s=unwritten_age_s,
                max_lag_s=max_lag_s,
                receive_errors=self.receive_errors,
            )
