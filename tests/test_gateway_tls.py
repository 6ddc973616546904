"""The gateway on a broker that demands TLS and a password, as a production broker does."""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.service import Gateway, GatewaySettings
from shopfloor.messages import AssetPath, Reading, encode_readings
from shopfloor.mqtt import make_client
from shopfloor.plant import Plant
from shopfloor.store import StoreSettings, open_store
from tests.conftest import MQTT_PASSWORD, assert_no_secret_in_logs
from tests.servers import ServerProcess, free_port, require_binary
from tests.test_end_to_end import wait_until

PRESS = AssetPath("polimer", "brest", "moulding", "line-1", "imm-01")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("shopfloor test CA"))
        .issuer_name(_name("shopfloor test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class SecureMosquitto(ServerProcess):
    """Mosquitto with only a TLS listener and a password file."""

    def __init__(self, workdir: Path, user: str, password: str):
        workdir.mkdir(parents=True, exist_ok=True)
        self.ca, cert, key = write_certificates(workdir)
        passwords = workdir / "passwd"
        # Written in clear, then hashed in place: the password goes on no command line.
        passwords.touch(0o600)
        passwords.write_text(f"{user}:{password}\n")
        subprocess.run(
            [require_binary("mosquitto_passwd"), "-U", str(passwords)],
            check=True,
            capture_output=True,
        )
        port = free_port()
        config = workdir / "mosquitto.conf"
        config.write_text(
            f"listener {port} 127.0.0.1\ncafile {self.ca}\ncertfile {cert}\nkeyfile {key}\n"
            f"allow_anonymous false\npassword_file {passwords}\nuser {getpass.getuser()}\n"
        )
        super().__init__(
            "mosquitto-tls", [require_binary("mosquitto"), "-c", str(config)], port, workdir
        )

    def url(self, user: str, password: str) -> str:
        return f"mqtts://{user}:{password}@127.0.0.1:{self.port}?ca={self.ca}"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[SecureMosquitto]:
    server = SecureMosquitto(tmp_path / "broker", "gateway", MQTT_PASSWORD)
    server.start()
    yield server
    server.stop()
    assert_no_secret_in_logs(server.workdir)


def test_gateway_over_tls_with_a_password_stores_what_is_published(
    example_plant: Plant, broker: SecureMosquitto, tmp_path: Path
) -> None:
    store = open_store(StoreSettings(url=f"sqlite:{tmp_path / 'store.db'}"))
    settings = GatewaySettings(client_id="gw-tls", spill_path=tmp_path / "spill.db")
    gateway = Gateway(example_plant, broker.url("gateway", MQTT_PASSWORD), store, settings)
    gateway.start()
    publisher = make_client(broker.url("gateway", MQTT_PASSWORD), "publisher-tls")
    publisher.loop_start()
    try:
        wait_until(gateway.mqtt.is_connected, 15, "the gateway over TLS")
        wait_until(publisher.is_connected, 15, "the publisher over TLS")
        time.sleep(0.3)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        reading = Reading(signal="power", value=12.5, ts=now, unit="kW")
        publisher.publish(PRESS.topic(), encode_readings([reading]), qos=1).wait_for_publish(5)
        wait_until(lambda: gateway.snapshot().points_written == 1, 10, "the point")
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        gateway.stop()
    points = store.history(PRESS, "power", now, now + dt.timedelta(seconds=1))
    store.close()
    assert [(p.value, p.ts) for p in points] == [(12.5, now)]


@pytest.mark.parametrize(
    "url_of",
    [
        lambda b: b.url("gateway", "wrong-pw"),  # refused by the broker
        lambda b: b.url("gateway", MQTT_PASSWORD).split("?")[
            0
        ],  # a broker the system CAs do not vouch for
    ],
    ids=["wrong-password", "untrusted-certificate"],
)
def test_gateway_does_not_connect_with_a_wrong_password_or_an_untrusted_broker(
    example_plant: Plant, broker: SecureMosquitto, tmp_path: Path, url_of: object
) -> None:
    store = open_store(StoreSettings(url=f"sqlite:{tmp_path / 'store.db'}"))
    url = url_of(broker)  # type: ignore[operator]
    settings = GatewaySettings(client_id="gw-refused", spill_path=tmp_path / "spill.db")
    gateway = Gateway(example_plant, url, store, settings)
    gateway.start()
    try:
        time.sleep(3)
        assert not gateway.mqtt.is_connected()
        assert not gateway.snapshot().broker_connected
    finally:
        gateway.stop()
        store.close()
