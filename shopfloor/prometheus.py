"""Prometheus' text exposition format 0.0.4, the one renderer of the edge's and gateway's /metrics.

Not prometheus_client: it renames a counter without `_total` (broker_reconnects becomes
broker_reconnects_total) and writes every value as a float (1234567 as 1.234567e+06, 3 as 3.0),
which would change the names and figures that scrapers and dashboards already read. This
imports nothing the edge does not already have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CONTENT_TYPE", "Family", "Sample", "histogram", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4"


@dataclass(frozen=True)
class Sample:
    """One value of a family; `suffix` names a histogram's `_bucket`, `_sum` and `_count`."""

    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    suffix: str = ""


@dataclass(frozen=True)
class Family:
    """One metric: its HELP and TYPE lines, then its samples (none is allowed)."""

    name: str
    kind: Literal["counter", "gauge", "histogram"]
    help: str
    samples: Sequence[Sample]


def histogram(
    name: str, help_text: str, buckets: Mapping[float, int], total: float, count: int
) -> Family:
    """A histogram from cumulative counts per upper bound, with its `+Inf` bucket, sum and count."""
    samples = [
        Sample(n, {"le": repr(float(bound))}, "_bucket") for bound, n in sorted(buckets.items())
    ]
    samples += [
        Sample(count, {"le": "+Inf"}, "_bucket"),
        Sample(total, suffix="_sum"),
        Sample(count, suffix="_count"),
    ]
    return Family(name, "histogram", help_text, samples)


def render(families: Sequence[Family]) -> str:
    """The families as one exposition, each line ended by a newline."""
    lines = []
    for family in families:
        lines += [
            f"# HELP {family.name} {_escape_help(family.help)}",
            f"# TYPE {family.name} {family.kind}",
        ]
        lines += [
            f"{family.name}{s.suffix}{_labels(s.labels)} {_number(s.value)}" for s in family.samples
        ]
    return "\n".join(lines) + "\n"


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape_label(v)}"' for name, v in labels.items()) + "}"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(value: str) -> str:
    return _escape_help(value).replace('"', '\\"')


def _number(value: float) -> str:
    """Integers (and flags) exactly, since a rounded 1.23457e+06 would hide a change in a
    counter; floats as Python writes them, which Prometheus reads back to the same value."""
    return str(int(value)) if isinstance(value, int) else repr(float(value))
