"""The capacity bench's plumbing, on its quick step (2 machines, 15 s): it reads the components
from outside (their logs, the edge's /metrics, the store), so a change in any of them that
would blind the bench fails here rather than in `make bench`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from bench.capacity import PATHS, QUICK, SIGNALS, Template, run_step
from tests.servers import require_binary


def test_quick_step_measures_every_criterion_and_process(tmp_path: Path) -> None:
    require_binary("mosquitto")
    require_binary("influxd")
    template = Template.simulate(tmp_path, QUICK.backfill)
    assert {signal for _, _, signal, _, _ in template.readings} == set(SIGNALS)
    step = run_step(QUICK.first, QUICK, template, Console(quiet=True))
    assert step.published > 0 and step.lost == 0
    assert 0.9 < step.hz < 1.1  # each noisy signal once a second
    assert step.latencies and 0 < step.p99 < 5
    assert step.cycles and not step.skipped
    assert set(step.cpu) == {*PATHS["latency"], "analytics", "bench"} and step.chain() > 0
