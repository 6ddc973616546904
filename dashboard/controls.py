"""Demo controls: commands to a running simulator over the broker, and its announced status."""

from __future__ import annotations

from shopfloor.messages import (
    Action,
    MessageError,
    SimulatorStatus,
    control_topic,
    decode_status,
    encode_command,
    status_topic,
)
from shopfloor.mqtt import publish_once, read_retained
from shopfloor.plant import Plant


class Controls:
    """Drives the simulator of one plant's site."""

    def __init__(self, broker_url: str, plant: Plant):
        self.broker_url = broker_url
        self.tenant, self.site = plant.tenant.id, plant.site.id

    def send(self, action: Action) -> None:
        """Publish a command; raises ConnectionError naming the broker if it cannot."""
        publish_once(self.broker_url, control_topic(self.tenant, self.site), encode_command(action))

    def status(self) -> SimulatorStatus | None:
        """What the running simulator last announced, or None if none did."""
        try:
            payload = read_retained(self.broker_url, status_topic(self.tenant, self.site))
        except ValueError:
            return None
        if payload is None:
            return None
        try:
            return decode_status(payload)
        except MessageError:
            return None
