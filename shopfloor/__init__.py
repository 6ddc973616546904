"""The shared contract: what every component of the platform agrees on.

`plant` is the plant model and its YAML file; `messages` the topic namespace, the payload
schema and the one codec; `store` the store interface, its settings and its backends; `kpis`
the series and shift-report schema the analytics service writes back; `config` YAML loading
with located errors; `mqtt` broker URLs and the MQTT client; `states` the machine-state
taxonomy; `diskqueue` the store-and-forward queue on disk; `credentials` the secret checks and
log redaction; `opcua_security` OPC UA certificates; `prometheus` the one Prometheus text
renderer; `sqlite` the one SQLite opener; `_paho` and `_asyncua` the private internals of
those libraries the platform relies on, each behind one adapter. It imports no component
(the layers of pyproject.toml's import-linter contracts), and importing the package imports
none of these modules. See README.md in this folder.
"""

__all__ = [
    "config",
    "credentials",
    "diskqueue",
    "kpis",
    "messages",
    "mqtt",
    "opcua_security",
    "plant",
    "prometheus",
    "sqlite",
    "states",
    "store",
]
