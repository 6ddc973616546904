"""The kernel bench's verdicts: a kernel that misses its goal is told apart by what caps it."""

from __future__ import annotations

import pytest

from bench.kernels import Figure


@pytest.mark.parametrize(
    ("share", "binding", "cap", "verdict"),
    [
        (0.35, True, 0.6, "met"),
        (0.2, True, 0.25, "MISSED: bound by its part (caps at 25%), runs at 50% of it"),
        (0.2, True, 0.6, "MISSED: its part caps at 60%, runs at 50% of it"),
        (0.2, False, 0.25, "MISSED: not at a bound measured here (its part caps at 25%, runs at 50% of it)"),
        (0.2, None, None, "MISSED"),
    ],
)  # fmt: skip
def test_a_miss_names_what_caps_it(
    share: float, binding: bool | None, cap: float | None, verdict: str
) -> None:
    bound = None if binding is None else "its part"
    of_bound = None if binding is None else 0.5
    figure = Figure("k", 1e8, 20.0, share, 1e10, bound, bool(binding), of_bound, cap)
    assert figure.verdict == verdict
