"""Running a scenario as fast as possible: for tests, figures and backfilling history.

The run can be written as a recording (the same format `shopfloor record` writes), so that it
can be replayed into the broker at any speed, or with its own timestamps to backfill a store.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shopfloor.messages import AssetPath, MessageKind, Reading, encode_events, encode_readings
from simulators.plant_sim import PlantSim
from simulators.recording import RecordingWriter
from simulators.scenario import LoadedScenario
from simulators.signals import Value


def default_start(loaded: LoadedScenario) -> datetime:
    """The scenario's own start, or one that makes the run end now (a backfill of the past)."""
    if loaded.scenario.start is not None:
        return loaded.scenario.start
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(seconds=loaded.scenario.duration)


def run_fast(
    loaded: LoadedScenario, output: Path | None = None, start: datetime | None = None
) -> PlantSim:
    """Run the whole scenario; with `output`, write every change and event as a recording."""
    floor = PlantSim(loaded, start or default_start(loaded))
    scenario = loaded.scenario
    if output is None:
        floor.run_until(scenario.duration)
        floor.finish()
        return floor
    with output.open("w", encoding="utf-8") as file:
        writer = _ChangeWriter(RecordingWriter(file, floor.plant.tenant.id, floor.start), floor)
        for step in range(1, int(scenario.duration / scenario.sample_interval) + 1):
            t = step * scenario.sample_interval
            floor.run_until(t)
            writer.sample(t)
        floor.run_until(scenario.duration)
        floor.finish()
        writer.events(scenario.duration)
    return floor


class _ChangeWriter:
    """Writes what changed since the last sample, as an OPC UA subscription reports it."""

    def __init__(self, writer: RecordingWriter, floor: PlantSim):
        self.writer, self.floor = writer, floor
        self.units = {path: {s: sig.unit for s, sig in signals.items()}
                      for path, signals in floor.plant.catalogue().items()}  # fmt: skip
        self.last: dict[tuple[AssetPath, str], Value] = {}

    def sample(self, t: float) -> None:
        ts = self.floor.wall(t)
        for path, values in self.floor.sample().items():
            readings = []
            for name, value in values.items():
                if self.last.get((path, name)) != value:
                    self.last[(path, name)] = value
                    readings.append(
                        Reading(signal=name, value=value, ts=ts, unit=self.units[path][name])
                    )
            if readings:
                self.writer.write(t, path.topic(), json.loads(encode_readings(readings)))
        self.events(t)

    def events(self, t: float) -> None:
        for event in self.floor.take_outbox():
            payload = json.loads(encode_events([event.event]))
            self.writer.write(t, event.path.topic(MessageKind.EVENT), payload)
