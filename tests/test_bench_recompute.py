"""The recompute bench's parallel driver: every core gives the scores one core gives."""

from __future__ import annotations

import numpy as np

from bench.recompute import PARTS, make_plant, run, same_results, service_jobs


def test_two_threads_score_exactly_as_one() -> None:
    plant = make_plant(days=1, machines=2)
    jobs = service_jobs(plant)
    one, two = run(jobs, 1), run(jobs, 2)
    assert same_results(one, two)
    assert set(two.cpu) == {PARTS[p] for p in ("normal", "entropy", "t2", "oee", "energy")}
    entropy = [r for job, r in zip(jobs, two.results, strict=True) if job.part == PARTS["entropy"]]
    assert len(entropy) == 5  # machine 0 streams its 5 process signals; machine 1 has a model
    assert all(r is not None and np.isfinite(r).sum() > 10_000 for r in entropy)
