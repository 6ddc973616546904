"""The kernel bench's verdicts: a kernel that misses its goal is told apart by what caps it."""

from __future__ import annotations

import pytest

from bench.kernels import Figure


@pytest.mark.parametrize(
    ("share", "cap", "verdict"),
    [
        (0.35, 0.6, "met"),
        (0.2, 0.25, "MISSED: bound by its part (caps at 25%), runs at 50% of it"),
        (0.2, 0.6, "MISSED: its part caps at 60%, runs at 50% of it"),
        (0.2, None, "MISSED"),
    ],
)  # fmt: skip
def test_a_miss_names_what_caps_it(share: float, cap: float | None, verdict: str) -> None:
    bound = None if cap is None else "its part"
    of_bound = None if cap is None else 0.5
    figure = Figure("k", 1e8, 20.0, share, 1e10, bound, of_bound, cap)
    assert figure.verdict == verdict
