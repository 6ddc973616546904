"""The running demo, as other commands find it: `<data_dir>/running.json`, written by the demo's
supervisor at start and removed at its stop, ignored when its process is gone."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

RUNNING_FILE = "running.json"
SESSION_DIR_ENV = "SHOPFLOOR_SESSION_DIR"
TENANTS_DIR = "tenants"


@dataclass(frozen=True)
class RunningDemo:
    session_dir: Path
    broker_url: str
    api_url: str
    dashboard_url: str
    plant: Path
    scenario: Path | None
    pid: int


def running_demo(data_dir: Path = Path(".shopfloor")) -> RunningDemo | None:
    """The demo running on `data_dir`, or None when none is (or its supervisor died)."""
    try:
        fields = json.loads((data_dir / RUNNING_FILE).read_text())
        demo = RunningDemo(
            **{
                **fields,
                "session_dir": Path(fields["session_dir"]),
                "plant": Path(fields["plant"]),
                "scenario": fields["scenario"] and Path(fields["scenario"]),
            }
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None
    try:
        os.kill(demo.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, under another user
    return demo


@contextlib.contextmanager
def announced(demo: RunningDemo, data_dir: Path) -> Iterator[None]:
    """Keep `running.json` in `data_dir` while the demo runs."""
    path = data_dir / RUNNING_FILE
    fields = {
        key: str(value) if isinstance(value, Path) else value for key, value in asdict(demo).items()
    }
    path.write_text(json.dumps(fields, indent=2) + "\n")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
