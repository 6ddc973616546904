"""Loaded by every Python process of a demo run under libfaketime (tests/test_demo_day.py puts
this folder on PYTHONPATH), with the monotonic clock left alone (FAKETIME_DONT_FAKE_MONOTONIC).

Debian's libfaketime 0.9.10 shifts the absolute deadline of clock_nanosleep on the monotonic
clock by the fake offset, so time.sleep, which sleeps until such a deadline, fails with EINVAL;
a select() with a relative timeout sleeps the same time. (With the monotonic clock faked
instead, every lock, event and queue wait with a timeout hangs: libfaketime does not translate
the sem_clockwait deadline they use.)
"""

import select
import time
from typing import SupportsIndex


def _sleep(seconds: float | SupportsIndex) -> None:
    select.select([], [], [], float(seconds))


time.sleep = _sleep
