"""The compose stack's one-shot set-up: the broker's accounts, ACL and TLS certificate, an
InfluxDB token per service, and each service's own credentials file.

It runs as the `init` service before the others (docker-compose.yml) and again at every
`docker compose up`: what exists is kept, only what is missing is made. Arguments are handed to
`shopfloor broker config` (e.g. `--rotate USERNAME`), which then runs even though accounts exist.

Each service finds its credentials in /run/shopfloor/credentials.env, on a volume of its own
that only it and this set-up mount (deploy/compose/with-credentials.sh reads it): no service
sees another's broker password or store token, and none gets the InfluxDB admin token, which
only InfluxDB itself and this set-up hold.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(os.environ.get("INIT_ROOT", "/"))  # "/" in the container; tests use a temporary one
BROKER = ROOT / "shopfloor" / "broker"  # shared with Mosquitto, which reads it as its own user
STATE = ROOT / "shopfloor" / "init"  # this set-up's alone: the CA key and the store tokens
CREDENTIALS = ROOT / "shopfloor" / "credentials"  # <service>/credentials.env, one volume each
CENTRE_CERTS = ROOT / "certs"  # the centre's own broker.pem and broker-key.pem, if any
POLICY = Path(__file__).resolve().parents[1] / "mosquitto" / "mosquitto.conf"

MOSQUITTO_UID = 1883  # the eclipse-mosquitto image's user
SHOPFLOOR_UID = 10001  # the shopfloor image's user (Dockerfile)
BROKER_HOST = "mosquitto"  # on the compose network, plain MQTT: port 1883 is not published
PLAIN_PORT, TLS_PORT = 1883, 8883

# The broker role of each service (None: no broker account).
SERVICES: dict[str, str | None] = {
    "simulators": "simulator",
    "edge": "edge",
    "gateway": "gateway",
    "analytics": None,
    "dashboard": "dashboard",
}

# Least privilege on the store (docs/security.md): the readings bucket (INFLUXDB_BUCKET) is
# written by the gateway's ingest alone, which reads nothing; what analytics derives (KPIs,
# shift reports, anomaly scores and events) and what users add (acknowledgements, the
# dashboard's view log) go to the results bucket (INFLUXDB_RESULTS_BUCKET). Each store token
# by what it may do, per bucket; "gateway-api" is the gateway's HTTP API.
READINGS, RESULTS = "readings", "results"
READS_ALL_WRITES_RESULTS = (("read", READINGS), ("read", RESULTS), ("write", RESULTS))
STORE_ACCESS: dict[str, tuple[tuple[str, str], ...]] = {
    "gateway": (("write", READINGS),),
    "gateway-api": READS_ALL_WRITES_RESULTS,
    "analytics": READS_ALL_WRITES_RESULTS,
    "dashboard": READS_ALL_WRITES_RESULTS,
}


class InitError(Exception):
    """What stops the set-up; the message says what to do."""


def setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise InitError(f"{name} is not set (docker-compose.yml gives it to the init service)")
    return value


def write_secret(path: Path, text: str, owner: int) -> None:
    """Write `text` readable by `owner` only, replacing any earlier file at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    if os.geteuid() == 0:  # as in the container: hand the file to its reader's user
        os.chown(partial, owner, owner)
    partial.replace(path)


def broker_certificate() -> tuple[Path, Path]:
    """The broker's certificate and key: the centre's own if mounted in /certs, else one from
    a private CA made at the first run (BROKER/tls/ca.pem is what edges must trust)."""
    tls = BROKER / "tls"
    certificate, key = tls / "broker.pem", tls / "broker-key.pem"
    own_certificate, own_key = CENTRE_CERTS / "broker.pem", CENTRE_CERTS / "broker-key.pem"
    if own_certificate.exists() and own_key.exists():
        write_secret(certificate, own_certificate.read_text(), MOSQUITTO_UID)
        write_secret(key, own_key.read_text(), MOSQUITTO_UID)
        (tls / "ca.pem").unlink(missing_ok=True)  # the centre hands its CA to the edges
    elif not key.exists():
        names = os.environ.get("BROKER_HOSTNAMES", "localhost").split(",")
        make_private_certificate([name.strip() for name in names if name.strip()], tls)
    return certificate, key


def make_private_certificate(names: list[str], tls: Path) -> None:
    """A CA of this deployment (its key kept in STATE) and a broker certificate for `names`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not names:
        raise InitError("BROKER_HOSTNAMES is empty: name the host the edges connect to")

    def pem(key: ec.EllipticCurvePrivateKey) -> str:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    now = datetime.now(UTC) - timedelta(minutes=5)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shopfloor broker CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(ca_key, hashes.SHA256())
    )
    alternative: list[x509.GeneralName] = []
    for name in names:
        try:
            alternative.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative.append(x509.DNSName(name))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write_secret(STATE / "ca-key.pem", pem(ca_key), 0)
    write_secret(tls / "broker-key.pem", pem(key), MOSQUITTO_UID)
    (tls / "broker.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tls / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))


def broker_accounts(plants: list[str], options: list[str]) -> list[dict[str, str]]:
    """The accounts of `shopfloor broker config`, run when there are none yet or `options`
    ask for a change; its configuration goes to BROKER/conf.d for Mosquitto."""
    accounts = BROKER / "accounts.json"
    certificate, key = broker_certificate()
    if options or not accounts.exists():
        command = [
            "shopfloor", "broker", "config", "--output", str(BROKER),
            "--port", str(PLAIN_PORT), "--tls-port", str(TLS_PORT),
            "--certfile", str(certificate), "--keyfile", str(key), *options, *plants,
        ]  # fmt: skip
        if subprocess.run(command, check=False).returncode != 0:
            raise InitError("shopfloor broker config failed (its message is above)")
        accounts.chmod(0o600)  # root's: Mosquitto, which mounts BROKER too, needs only hashes
        BROKER.chmod(0o755)  # for Mosquitto's user to reach conf.d, passwd and acl
        if os.geteuid() == 0:
            for name in ("passwd", "acl"):
                os.chown(BROKER / name, MOSQUITTO_UID, MOSQUITTO_UID)
        write_listeners()
    listed: list[dict[str, str]] = json.loads(accounts.read_text())
    return listed


def write_listeners() -> None:
    """BROKER/mosquitto.conf less what deploy/mosquitto/mosquitto.conf, which includes it,
    already decides (storage, limits, logging): Mosquitto refuses some options twice."""
    decided = {line.split()[0] for line in policy_lines(POLICY.read_text())}
    generated = (BROKER / "mosquitto.conf").read_text().splitlines()
    kept = [line for line in generated if not line.split() or line.split()[0] not in decided]
    conf_d = BROKER / "conf.d"
    conf_d.mkdir(exist_ok=True)
    (conf_d / "shopfloor.conf").write_text("\n".join(kept) + "\n")


def policy_lines(text: str) -> list[str]:
    """The option lines of a Mosquitto configuration, but the include of the generated one."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith(("#", "include_dir"))]


def account(accounts: list[dict[str, str]], role: str, tenant: str) -> dict[str, str]:
    found = [a for a in accounts if a.get("role") == role and a.get("tenant") == tenant]
    if len(found) != 1:
        raise InitError(
            f"{BROKER / 'accounts.json'} has {len(found)} {role} accounts of tenant {tenant}; "
            "expected one"
        )
    return found[0]


def store_tokens() -> dict[str, str]:
    """An InfluxDB token per entry of STORE_ACCESS, made with the admin token once and kept in
    STATE; the admin token itself goes to no service. Tokens kept from another layout are
    revoked and made anew."""
    kept = STATE / "store-tokens.json"
    tokens: dict[str, str] = json.loads(kept.read_text()) if kept.exists() else {}
    if set(tokens) != set(STORE_ACCESS):
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError

        try:
            tokens = create_store_tokens()
        except ApiException as exc:
            raise InitError(
                f"InfluxDB refused to make the services' tokens: {exc.status} {exc.reason}"
            ) from None
        except HTTPError as exc:
            raise InitError(f"InfluxDB unreachable: {exc}") from None
        write_secret(kept, json.dumps(tokens), 0)
    return tokens


def create_store_tokens() -> dict[str, str]:
    from influxdb_client import Authorization, InfluxDBClient, Permission, PermissionResource

    org = setting("INFLUXDB_ORG")
    url, admin = setting("INFLUXDB_URL"), admin_token()
    with InfluxDBClient(url=url, token=admin, org=org) as client:
        org_id = client.organizations_api().find_organizations(org=org)[0].id
        buckets = {kind: bucket_id(client, name, org_id) for kind, name in bucket_names().items()}
        authorizations = client.authorizations_api()
        earlier = authorizations.find_authorizations_by_org_id(org_id)
        tokens = {}
        for service, access in STORE_ACCESS.items():
            description = f"shopfloor {service}"
            for old in earlier:  # a token whose copy was lost is useless: revoke it
                if old.description == description:
                    authorizations.delete_authorization(old)
            permissions = [
                Permission(
                    action, PermissionResource(type="buckets", id=buckets[kind], org_id=org_id)
                )
                for action, kind in access
            ]
            created = authorizations.create_authorization(
                authorization=Authorization(
                    org_id=org_id, description=description, permissions=permissions
                )
            )
            tokens[service] = created.token
    return tokens


def bucket_names() -> dict[str, str]:
    return {READINGS: setting("INFLUXDB_BUCKET"), RESULTS: setting("INFLUXDB_RESULTS_BUCKET")}


def bucket_id(client: Any, name: str, org_id: str) -> str:
    """The id of the bucket `name`; the results bucket is made at the first run (InfluxDB's own
    set-up makes only the readings bucket)."""
    found = client.buckets_api().find_bucket_by_name(name)
    if found is None:
        if name == setting("INFLUXDB_BUCKET"):
            raise InitError(f"InfluxDB has no bucket {name!r} (INFLUXDB_BUCKET)")
        found = client.buckets_api().create_bucket(bucket_name=name, org_id=org_id)
    return str(found.id)


def admin_token() -> str:
    """INFLUXDB_TOKEN of .env, refused while it is the placeholder of .env.example."""
    from shopfloor.credentials import CredentialError, check_secret

    token = setting("INFLUXDB_ADMIN_TOKEN")
    try:
        check_secret("INFLUXDB_TOKEN", token)
    except CredentialError as exc:
        raise InitError(str(exc)) from None
    return token


def service_credentials(service: str, broker: dict[str, str] | None, tokens: dict[str, str]) -> str:
    """The lines of a service's credentials.env: its broker URL, and its store token(s) with the
    buckets it writes and reads (the gateway's API gets a token and buckets of its own)."""
    values = {}
    if broker is not None:
        user, password = quote(broker["username"], safe=""), quote(broker["password"], safe="")
        values["SHOPFLOOR_BROKER_URL"] = f"mqtt://{user}:{password}@{BROKER_HOST}:{PLAIN_PORT}"
    for name, prefix in ((service, "SHOPFLOOR_STORE_"), (f"{service}-api", "SHOPFLOOR_API_STORE_")):
        if name in tokens:
            values |= store_variables(prefix, tokens[name], STORE_ACCESS[name])
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())


def store_variables(prefix: str, token: str, access: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """The store settings of a token: the bucket it writes, and the others it reads."""
    names = bucket_names()
    written = next(kind for action, kind in access if action == "write")
    read = [names[kind] for action, kind in access if action == "read" and kind != written]
    values = {f"{prefix}TOKEN": token, f"{prefix}DATABASE": names[written]}
    if read:
        values[f"{prefix}READ_ALSO"] = ",".join(read)
    return values


def main(options: list[str]) -> None:
    from shopfloor.config import ConfigError
    from shopfloor.plant import load_plant

    admin_token()
    plants = setting("PLANT_FILES").split(",")
    try:
        tenant = load_plant(Path(plants[0])).tenant.id
    except ConfigError as exc:
        raise InitError(str(exc)) from None
    accounts = broker_accounts(plants, options)
    tokens = store_tokens()
    for service, role in SERVICES.items():
        broker = account(accounts, role, tenant) if role else None
        text = service_credentials(service, broker, tokens)
        write_secret(CREDENTIALS / service / "credentials.env", text, SHOPFLOOR_UID)
    print(f"credentials written for {', '.join(SERVICES)}")


def run(argv: list[str]) -> int:
    try:
        main(argv)
    except InitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
