"""The discrete-event core: a simulated clock and a queue of timed actions.

Time is seconds since the start of the run. Actions scheduled for the same instant run in the
order they were scheduled, so a run is a pure function of its scenario and seed, whatever the
wall clock does: the same run can be served live at x1 or x60, or computed as fast as possible.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

Action = Callable[[], None]


@dataclass(order=True)
class _Scheduled:
    time: float
    sequence: int
    action: Action = field(compare=False)


class Simulation:
    """Runs scheduled actions in time order."""

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[_Scheduled] = []
        self._sequence = itertools.count()

    def at(self, time: float, action: Action) -> None:
        """Run `action` at simulated time `time` (never in the past)."""
        heapq.heappush(self._queue, _Scheduled(max(time, self.now), next(self._sequence), action))

    def after(self, delay: float, action: Action) -> None:
        self.at(self.now + delay, action)

    def run_until(self, until: float) -> None:
        """Run every action due up to and including `until`, then set the clock to `until`."""
        while self._queue and self._queue[0].time <= until:
            scheduled = heapq.heappop(self._queue)
            self.now = scheduled.time
            scheduled.action()
        self.now = max(self.now, until)
