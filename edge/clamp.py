"""Machine state from a retrofit current clamp, for machines that have no PLC to ask.

A motor's supply current tells off, idle (controls and hydraulics on, no cutting) and running
apart. Thresholds with hysteresis keep a noisy current near a threshold from flickering the
state, and a minimum duration keeps a start-up surge from counting as production.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from edge.config import CurrentClamp
from shopfloor.messages import Reading
from shopfloor.states import MachineState

_ORDER = (MachineState.OFF, MachineState.IDLE, MachineState.RUNNING)


class StateFromCurrent:
    """Turns current readings into `state` readings, one per change of state."""

    def __init__(self, clamp: CurrentClamp):
        self.clamp = clamp
        self.state: MachineState | None = None
        self._candidate: tuple[MachineState, datetime] | None = None

    def _level(self, amperes: float) -> MachineState:
        """The state the current points at, leaving the present one only past the hysteresis."""
        rising = (self.clamp.idle_above, self.clamp.running_above)
        level = sum(amperes >= threshold for threshold in rising)
        if self.state is not None and level < (present := _ORDER.index(self.state)):
            falling = [threshold - self.clamp.hysteresis for threshold in rising[:present]]
            level = sum(amperes >= threshold for threshold in falling)
        return _ORDER[level]

    def update(self, current: Reading) -> Reading | None:
        """Feed one current reading; returns a `state` reading when the state changes."""
        if not isinstance(current.value, int | float) or isinstance(current.value, bool):
            return None
        level = self._level(float(current.value))
        if level == self.state:
            self._candidate = None
            return None
        if self._candidate is None or self._candidate[0] != level:
            self._candidate = (level, current.ts)
        since = self._candidate[1]
        if current.ts - since < timedelta(seconds=self.clamp.min_duration_s):
            return None
        self.state, self._candidate = level, None
        return Reading(signal="state", value=level.value, ts=since, quality=current.quality)
