"""The one Prometheus text renderer: escaping and numbers as the exposition format 0.0.4 wants."""

from __future__ import annotations

from shopfloor.prometheus import Family, Sample, histogram, render


def test_labels_and_help_are_escaped_and_integers_exact() -> None:
    family = Family(
        "x_total", "counter", "back\\slash\nnewline", [Sample(1234567, {"a": 'q"b\\n\nl'})]
    )
    assert render([family]) == (
        "# HELP x_total back\\\\slash\\nnewline\n"
        "# TYPE x_total counter\n"
        'x_total{a="q\\"b\\\\n\\nl"} 1234567\n'
    )


def test_flags_render_as_digits_and_floats_as_written() -> None:
    samples = [Sample(True, {"k": "t"}), Sample(False, {"k": "f"}), Sample(0.1, {"k": "r"})]
    assert render([Family("g", "gauge", "h", samples)]).splitlines()[2:] == [
        'g{k="t"} 1',
        'g{k="f"} 0',
        'g{k="r"} 0.1',
    ]


def test_histogram_adds_the_inf_bucket_sum_and_count() -> None:
    text = render([histogram("h", "w", {1: 2, 0.5: 1}, 0.75, 3)])
    assert text.splitlines()[2:] == [
        'h_bucket{le="0.5"} 1',
        'h_bucket{le="1.0"} 2',
        'h_bucket{le="+Inf"} 3',
        "h_sum 0.75",
        "h_count 3",
    ]
