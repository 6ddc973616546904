"""The host a benchmark ran on, named next to its figures: a figure depends on the CPU model,
its cores and the vector instructions the compiled kernels may use, and is only comparable
with figures taken on the same host.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path

import llvmlite.binding as llvm  # type: ignore[import-untyped]

VECTOR_EXTENSIONS = ("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512vl", "neon", "sve")
"""Those that decide how wide the kernels' vectors are, in the names LLVM gives them."""


def cpu_model() -> str:
    """The CPU's model as the OS names it (/proc/cpuinfo on Linux), else as Python does."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def host_line() -> str:
    """E.g. "host: AMD EPYC (LLVM target znver4), 2 cores, avx avx2 fma avx512f; 2025-01-31"."""
    features = llvm.get_host_cpu_features()
    vectors = " ".join(name for name in VECTOR_EXTENSIONS if features.get(name, False))
    return (
        f"host: {cpu_model()} (LLVM target {llvm.get_host_cpu_name()}), "
        f"{os.cpu_count()} cores, {vectors or 'no vector extensions'}; "
        f"{datetime.now(UTC).date().isoformat()}"
    )
