"""The recompute bench's parallel driver: every core gives the scores one core gives."""

from __future__ import annotations

import numpy as np

from bench.recompute import PARTS, jobs_of, make_plant, run, same_results


def test_two_cores_score_exactly_as_one() -> None:
    plant = make_plant(days=1, machines=2)
    one, two = run(plant, 1), run(plant, 2)
    assert same_results(one, two)
    assert set(two.cpu) == set(PARTS.values())
    jobs = jobs_of(plant)
    entropy = [job.work() for job in jobs if job.part == PARTS["entropy"]]
    assert len(entropy) == 5  # machine 0 streams its 5 process signals; machine 1 has a model
    assert all(r is not None and np.isfinite(r).sum() > 10_000 for r in entropy)
    t2 = next(job.work() for job in jobs if job.part == PARTS["t2"])
    assert t2 is not None and t2.shape == (86_400,)
    assert sum(r is not None for r in two.results) == 5 + 1 + 1  # entropy, T², learnt model
