"""docker-compose.yml: it renders with the example settings, its services run real `shopfloor`
subcommands configured through real option environment variables, only the TLS doors are
published, and each service gets credentials of its own (docs/security.md)."""

from __future__ import annotations

import getpass
import importlib.util
import json
import os
import secrets
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import pytest
import typer.main
import yaml
from typer.core import TyperGroup

from launcher.cli import app
from launcher.cli.gateway import API_STORE_PREFIX
from shopfloor.mqtt import make_client
from shopfloor.store import ENV_VARS as STORE_ENV_VARS
from tests.conftest import MQTT_PASSWORD, assert_no_secret_in_logs
from tests.servers import ServerProcess, free_port, require_binary
from tests.test_end_to_end import wait_until

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
WITH_CREDENTIALS = ROOT / "deploy" / "compose" / "with-credentials.sh"
INIT_SCRIPT = ROOT / "deploy" / "compose" / "init.py"
SHOPFLOOR_SCRIPT = Path(sys.executable).parent / "shopfloor"

COMPONENTS = {"simulators", "edge", "gateway", "analytics", "dashboard"}
SERVICES = {"init", "mosquitto", "influxdb", "caddy", *COMPONENTS}
# What each service publishes: the proxy's HTTP(S), and the broker's TLS listener for the edges.
PUBLISHED = {"caddy": {80, 443}, "mosquitto": {8883}}
INFLUXDB_INIT = {
    "DOCKER_INFLUXDB_INIT_USERNAME": "INFLUXDB_USERNAME",
    "DOCKER_INFLUXDB_INIT_PASSWORD": "INFLUXDB_PASSWORD",
    "DOCKER_INFLUXDB_INIT_ORG": "INFLUXDB_ORG",
    "DOCKER_INFLUXDB_INIT_BUCKET": "INFLUXDB_BUCKET",
    "DOCKER_INFLUXDB_INIT_ADMIN_TOKEN": "INFLUXDB_TOKEN",
}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a compose env file; comments and blank lines skipped."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def compose_services() -> dict[str, dict[str, Any]]:
    """The services of docker-compose.yml as written (YAML merge keys resolved)."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    services: dict[str, dict[str, Any]] = document["services"]
    return services


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment, written either as a mapping or as a list of KEY=VALUE."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    pairs = (str(item).partition("=") for item in env)
    return {key: value if sep else None for key, sep, value in pairs}


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]


def built_services() -> list[str]:
    return sorted(name for name, service in compose_services().items() if "build" in service)


class Parameter(Protocol):
    """What these tests read of a CLI parameter (typer's bundled click or click itself)."""

    @property
    def envvar(self) -> str | Sequence[str] | None: ...


class Command(Protocol):
    @property
    def params(self) -> Sequence[Parameter]: ...


def cli_group() -> TyperGroup:
    """The `shopfloor` command as the click group that typer builds."""
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return group


def walk(command: Command) -> Iterator[Command]:
    """A command and, for a group, every command below it."""
    yield command
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            yield from walk(sub)


def option_envvars() -> set[str]:
    """Every environment variable some option of the `shopfloor` CLI reads."""
    names: set[str] = set()
    for command in walk(cli_group()):
        for param in command.params:
            envvar = param.envvar
            if isinstance(envvar, str):
                names.add(envvar)
            elif envvar:
                names.update(envvar)
    return names


@pytest.fixture(scope="module")
def rendered() -> dict[str, Any]:
    """`docker-compose config` of docker-compose.yml with the settings of .env.example."""
    binary = shutil.which("docker-compose")
    if binary is None:
        message = (
            "docker-compose is not installed; install it with: apt-get install -y docker-compose"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Variables of the calling shell would override the env file: leave them out.
    env = {k: v for k, v in os.environ.items() if k not in read_env_file(ENV_EXAMPLE)}
    result = subprocess.run(
        [binary, "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE_FILE), "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_compose_file_renders_every_service(rendered: dict[str, Any]) -> None:
    assert set(rendered["services"]) >= SERVICES


def test_influxdb_is_initialised_from_the_env_file(rendered: dict[str, Any]) -> None:
    settings = read_env_file(ENV_EXAMPLE)
    env = environment(rendered["services"]["influxdb"])
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    for init_var, setting in INFLUXDB_INIT.items():
        assert settings[setting], f"{setting} is empty in .env.example"
        assert env[init_var] == settings[setting], init_var


def test_only_the_proxy_and_the_brokers_tls_listener_are_published(
    rendered: dict[str, Any],
) -> None:
    published = {
        name: {int(port["published"]) for port in service.get("ports", [])}
        for name, service in rendered["services"].items()
    }
    assert {name: ports for name, ports in published.items() if ports} == PUBLISHED


def test_the_influxdb_admin_credentials_reach_only_influxdb_and_init(
    rendered: dict[str, Any],
) -> None:
    settings = read_env_file(ENV_EXAMPLE)
    for setting, holders in (
        ("INFLUXDB_TOKEN", {"influxdb", "init"}),
        ("INFLUXDB_PASSWORD", {"influxdb"}),
    ):
        holding = {
            name
            for name, service in rendered["services"].items()
            if settings[setting] in environment(service).values()
        }
        assert holding == holders, setting


def test_no_service_gets_a_shared_broker_account_or_store_token(rendered: dict[str, Any]) -> None:
    """Their broker URL and store token come from their own credentials file, not from .env."""
    for name, service in rendered["services"].items():
        env = environment(service)
        assert not {"SHOPFLOOR_BROKER_URL", "SHOPFLOOR_STORE_TOKEN"} & set(env), name
        assert not any(key.startswith("MQTT_") for key in env), name


def volume_mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Named volume -> (where it is mounted, read-only) of a service, in the short syntax that
    docker-compose 1.x renders (`source:target:mode`) or the long one that 2.x does."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            volume = {"source": source, "target": target, "read_only": mode == ["ro"]}
            volume["type"] = "bind" if source.startswith(("/", ".")) else "volume"
        if volume["type"] == "volume":
            mounts[volume["source"]] = (volume["target"], bool(volume.get("read_only")))
    return mounts


def test_each_component_reads_credentials_only_it_and_init_mount(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    for component in COMPONENTS:
        volume = f"credentials-{component}"
        mounted = {name for name, service in services.items() if volume in volume_mounts(service)}
        assert mounted == {component, "init"}, volume
        assert volume_mounts(services[component])[volume] == ("/run/shopfloor", True)
        assert services[component]["entrypoint"] == [
            "/bin/sh",
            "/app/deploy/compose/with-credentials.sh",
        ]


def test_the_broker_reads_its_configuration_but_cannot_change_it(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    assert volume_mounts(services["mosquitto"])["broker"] == ("/shopfloor/broker", True)
    assert volume_mounts(services["init"])["broker"] == ("/shopfloor/broker", False)
    mounted = {name for name, service in services.items() if "broker" in volume_mounts(service)}
    assert mounted == {"mosquitto", "init"}


def test_init_runs_before_the_services_that_need_its_credentials(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    assert services["init"]["depends_on"]["influxdb"]["condition"] == "service_healthy"
    assert services["mosquitto"]["depends_on"]["init"]["condition"] == (
        "service_completed_successfully"
    )
    for component in COMPONENTS:
        waits_for = set(services[component]["depends_on"])
        assert waits_for & {"init", "mosquitto"}, component


def test_built_services_are_the_components_and_init() -> None:
    assert set(built_services()) == {*COMPONENTS, "init"}


def test_the_components_entry_point_runs_shopfloor_with_their_arguments() -> None:
    assert WITH_CREDENTIALS.read_text().rstrip().endswith('exec shopfloor "$@"')


@pytest.mark.parametrize("service", sorted(COMPONENTS))
def test_service_command_is_a_shopfloor_subcommand(service: str) -> None:
    definition = compose_services()[service]
    words = command_words(definition)
    assert words, f"{service} has no command"
    name = words[0]
    assert name in cli_group().commands, f"{service}: `shopfloor {name}` does not exist"
    result = subprocess.run(
        [str(SHOPFLOOR_SCRIPT), name, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_shopfloor_variables_are_option_envvars() -> None:
    known = option_envvars()
    used = {
        (service, var)
        for service, definition in compose_services().items()
        for var in environment(definition)
        if var.startswith("SHOPFLOOR_")
    }
    assert used, "no SHOPFLOOR_ variables found in docker-compose.yml"
    unknown = sorted(f"{service}: {var}" for service, var in used if var not in known)
    assert not unknown, f"not the envvar of any `shopfloor` option: {unknown}"


def test_placeholders_of_the_env_file_all_start_with_change_me() -> None:
    """What the components refuse at start (shopfloor.credentials.PLACEHOLDER_PREFIX)."""
    settings = read_env_file(ENV_EXAMPLE)
    secrets = {k: v for k, v in settings.items() if k.endswith(("PASSWORD", "TOKEN"))}
    assert set(secrets) == {"INFLUXDB_PASSWORD", "INFLUXDB_TOKEN", "API_TOKEN"}
    assert all(value.startswith("change-me") for value in secrets.values())


def load_init(root: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """deploy/compose/init.py with its container folders below `root`."""
    monkeypatch.setenv("INIT_ROOT", str(root))
    spec = importlib.util.spec_from_file_location(f"compose_init_{root.name}", INIT_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ACCOUNTS = [
    {
        "username": f"{tenant}-{role}",
        "password": secrets.token_urlsafe(18),
        "tenant": tenant,
        "role": role,
    }
    for tenant in ("polimer", "metalform")
    for role in ("edge", "simulator", "gateway", "dashboard")
]


def kept_store_tokens(init: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Store tokens as an earlier run of init kept them, and the buckets of .env.example."""
    tokens = {service: secrets.token_urlsafe(32) for service in init.STORE_ACCESS}
    init.write_secret(init.STATE / "store-tokens.json", json.dumps(tokens), 0)
    monkeypatch.setenv("INFLUXDB_BUCKET", "shopfloor")
    monkeypatch.setenv("INFLUXDB_RESULTS_BUCKET", "shopfloor-results")
    return tokens


@pytest.fixture
def initialised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """init run on broker accounts of two tenants and store tokens already made (InfluxDB 2,
    which makes them, is no server of this suite), as at a second `docker compose up`."""
    init = load_init(tmp_path, monkeypatch)
    init.BROKER.mkdir(parents=True)
    (init.BROKER / "accounts.json").write_text(json.dumps(ACCOUNTS))
    tokens = kept_store_tokens(init, monkeypatch)
    monkeypatch.setenv("PLANT_FILES", str(ROOT / "examples" / "plant.yaml"))
    monkeypatch.setenv("BROKER_HOSTNAMES", "localhost,127.0.0.1")
    monkeypatch.setenv("INFLUXDB_ADMIN_TOKEN", secrets.token_urlsafe(32))
    assert init.run([]) == 0
    init.tokens = tokens
    return init


def credentials_of(init: Any, service: str) -> dict[str, str]:
    path = init.CREDENTIALS / service / "credentials.env"
    assert path.stat().st_mode & 0o777 == 0o600, service
    return credentials_lines(path.read_text())


def test_init_gives_each_service_its_own_account_and_token(initialised: Any) -> None:
    known = {*option_envvars(), *STORE_ENV_VARS.values()}
    known |= {
        name.replace("SHOPFLOOR_STORE_", API_STORE_PREFIX) for name in STORE_ENV_VARS.values()
    }
    accounts = {account["role"]: account for account in ACCOUNTS if account["tenant"] == "polimer"}
    for service, role in initialised.SERVICES.items():
        credentials = credentials_of(initialised, service)
        assert set(credentials) <= known, service
        if role is None:
            assert "SHOPFLOOR_BROKER_URL" not in credentials, service
        else:
            url = urlsplit(credentials["SHOPFLOOR_BROKER_URL"])
            assert (url.scheme, url.hostname, url.port) == ("mqtt", "mosquitto", 1883)
            assert (url.username, url.password) == (
                accounts[role]["username"],
                accounts[role]["password"],
            )
        assert credentials.get("SHOPFLOOR_STORE_TOKEN") == initialised.tokens.get(service), service
    given = [credentials_of(initialised, service) for service in initialised.SERVICES]
    urls = [c["SHOPFLOOR_BROKER_URL"] for c in given if "SHOPFLOOR_BROKER_URL" in c]
    tokens = [c[name] for c in given for name in c if name.endswith("STORE_TOKEN")]
    assert len({urlsplit(url).username for url in urls}) == len(urls) == 4  # no account shared
    assert len(set(tokens)) == len(tokens) == 4  # ingest, API, analytics, dashboard: one each


def store_of(credentials: dict[str, str], prefix: str = "SHOPFLOOR_STORE_") -> tuple[str, str]:
    return credentials[f"{prefix}DATABASE"], credentials.get(f"{prefix}READ_ALSO", "")


def test_only_the_gateways_ingest_writes_readings_and_it_reads_nothing(initialised: Any) -> None:
    """The tokens' permissions and the buckets each service is told to write and read
    (docs/security.md): the readings bucket is written by the ingest alone."""
    access = initialised.STORE_ACCESS
    assert access["gateway"] == (("write", "readings"),)
    writers = {service for service, rights in access.items() if ("write", "readings") in rights}
    assert writers == {"gateway"}
    for service in ("gateway-api", "analytics", "dashboard"):
        assert set(access[service]) == {
            ("read", "readings"), ("read", "results"), ("write", "results")
        }, service  # fmt: skip
    gateway = credentials_of(initialised, "gateway")
    assert store_of(gateway) == ("shopfloor", "")
    assert store_of(gateway, API_STORE_PREFIX) == ("shopfloor-results", "shopfloor")
    assert gateway[f"{API_STORE_PREFIX}TOKEN"] == initialised.tokens["gateway-api"]
    for service in ("analytics", "dashboard"):
        assert store_of(credentials_of(initialised, service)) == ("shopfloor-results", "shopfloor")


def test_init_refuses_the_placeholder_admin_token(
    initialised: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("INFLUXDB_ADMIN_TOKEN", read_env_file(ENV_EXAMPLE)["INFLUXDB_TOKEN"])
    assert initialised.run([]) == 2
    assert capsys.readouterr().err == (
        "error: INFLUXDB_TOKEN is still the placeholder of .env.example (change-me...): "
        "set a secret of your own\n"
    )


def tls_mosquitto(workdir: Path, tls: Path, password: str) -> ServerProcess:
    """Mosquitto with a TLS listener on init's broker certificate and one account, `edge`."""
    workdir.mkdir(parents=True)
    passwords = workdir / "passwd"
    passwords.touch(0o600)
    passwords.write_text(f"edge:{password}\n")
    subprocess.run([require_binary("mosquitto_passwd"), "-U", str(passwords)], check=True)
    port = free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\ncertfile {tls / 'broker.pem'}\nkeyfile {tls / 'broker-key.pem'}\n"
        f"allow_anonymous false\npassword_file {passwords}\nuser {getpass.getuser()}\n"
    )
    return ServerProcess(
        "mosquitto", [require_binary("mosquitto"), "-c", str(config)], port, workdir
    )


def handshake(port: int, ca: Path, name: str) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname=name),
    ):
        pass


def test_the_broker_certificate_init_makes_is_trusted_with_its_ca_only(
    initialised: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = initialised.BROKER / "tls"
    assert (initialised.STATE / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    assert (tls / "broker-key.pem").stat().st_mode & 0o777 == 0o600
    server = tls_mosquitto(tmp_path / "mosquitto", tls, MQTT_PASSWORD)
    server.start()
    client = make_client(
        f"mqtts://edge:{MQTT_PASSWORD}@localhost:{server.port}?ca={tls / 'ca.pem'}", "edge-tls"
    )
    client.loop_start()
    try:
        for name in ("localhost", "127.0.0.1"):  # BROKER_HOSTNAMES
            handshake(server.port, tls / "ca.pem", name)
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(server.port, tls / "ca.pem", "elsewhere.example")
        other = load_init(tmp_path / "other", monkeypatch)
        other.broker_certificate()
        with pytest.raises(ssl.SSLCertVerificationError):
            handshake(server.port, other.BROKER / "tls" / "ca.pem", "localhost")
        wait_until(client.is_connected, 15, "an edge over TLS with init's CA")
    finally:
        client.disconnect()
        client.loop_stop()
        server.stop()
    assert_no_secret_in_logs(server.workdir)


def test_the_broker_certificate_is_kept_across_runs(initialised: Any) -> None:
    tls = initialised.BROKER / "tls"
    before = (tls / "broker.pem").read_bytes(), (tls / "ca.pem").read_bytes()
    assert initialised.run([]) == 0
    assert ((tls / "broker.pem").read_bytes(), (tls / "ca.pem").read_bytes()) == before


def health_check(port: int) -> int:
    """The compose file's health check of the broker, on `port`."""
    command = compose_services()["mosquitto"]["healthcheck"]["test"]
    assert command[0] == "CMD-SHELL"
    shell = command[1].replace("$$", "$").replace("-p 1883", f"-p {port}")
    path = f"{Path(require_binary('mosquitto_sub')).parent}:{os.environ['PATH']}"
    return subprocess.run(["sh", "-c", shell], env={"PATH": path}, timeout=30).returncode


def test_the_broker_health_check_needs_no_account(tmp_path: Path) -> None:
    """Healthy when the broker answers and refuses an anonymous login; not when it is down."""
    command = compose_services()["mosquitto"]["healthcheck"]["test"][1]
    assert "-u " not in command and "-P " not in command
    workdir = tmp_path / "broker"
    workdir.mkdir()
    port = free_port()
    (workdir / "passwd").write_text("")
    config = workdir / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {workdir / 'passwd'}\n"
        f"user {getpass.getuser()}\n"
    )
    broker = ServerProcess(
        "mosquitto", [require_binary("mosquitto"), "-c", str(config)], port, workdir
    )
    broker.start()
    try:
        assert health_check(port) == 0
    finally:
        broker.stop()
    assert health_check(port) != 0


def compose_mosquitto(init: Any, workdir: Path) -> tuple[ServerProcess, int]:
    """Mosquitto started as compose starts it: deploy/mosquitto/mosquitto.conf including what
    init generated, its container folders moved below `workdir` and its ports made free ones.
    Returns the broker and its TLS port."""
    plain, tls = free_port(), free_port()
    data = workdir / "data"
    data.mkdir(parents=True)
    policy = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    policy = policy.replace("/mosquitto/data/", f"{data}/").replace(
        "/shopfloor/broker/", f"{init.BROKER}/"
    )
    config = workdir / "mosquitto.conf"
    config.write_text(f"{policy}user {getpass.getuser()}\n")
    generated = init.BROKER / "conf.d" / "shopfloor.conf"
    text = generated.read_text()
    assert "listener 1883\n" in text and "listener 8883\n" in text
    text = text.replace("listener 1883\n", f"listener {plain} 127.0.0.1\n")
    generated.write_text(text.replace("listener 8883\n", f"listener {tls} 127.0.0.1\n"))
    argv = [require_binary("mosquitto"), "-c", str(config)]
    return ServerProcess("mosquitto", argv, plain, workdir), tls


def test_the_compose_broker_lets_each_service_in_with_its_own_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """init runs `shopfloor broker config` itself; Mosquitto starts on the shipped policy with
    the generated listeners, accounts and ACL; every service logs in with its credentials file,
    and an edge over TLS with init's CA."""
    init = load_init(tmp_path / "root", monkeypatch)
    kept_store_tokens(init, monkeypatch)
    monkeypatch.setenv("PATH", f"{SHOPFLOOR_SCRIPT.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("PLANT_FILES", str(ROOT / "examples" / "plant.yaml"))
    monkeypatch.setenv("BROKER_HOSTNAMES", "localhost")
    monkeypatch.setenv("INFLUXDB_ADMIN_TOKEN", secrets.token_urlsafe(32))
    assert init.run([]) == 0
    assert (init.BROKER / "accounts.json").stat().st_mode & 0o777 == 0o600
    server, tls_port = compose_mosquitto(init, tmp_path / "mosquitto")
    server.start()
    clients = []
    try:
        for service, role in init.SERVICES.items():
            if role is None:
                continue
            url = credentials_of(init, service)["SHOPFLOOR_BROKER_URL"]
            clients.append(
                make_client(
                    url.replace("@mosquitto:1883", f"@127.0.0.1:{server.port}"),
                    f"compose-{service}",
                )
            )
        edge = urlsplit(credentials_of(init, "edge")["SHOPFLOOR_BROKER_URL"])
        ca = init.BROKER / "tls" / "ca.pem"
        clients.append(
            make_client(
                f"mqtts://{edge.username}:{edge.password}@localhost:{tls_port}?ca={ca}",
                "compose-edge-tls",
            )
        )
        for client in clients:
            client.loop_start()
        for client in clients:
            wait_until(client.is_connected, 15, "a service's login")
    finally:
        for client in clients:
            client.disconnect()
            client.loop_stop()
        server.stop()
    assert_no_secret_in_logs(server.workdir)


@pytest.mark.parametrize("server", ["down", "influxdb 1.x"])
def test_init_stops_in_one_line_without_an_influxdb_2_to_make_tokens(
    initialised: Any,
    server: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    """The tokens are made at the first run: a store that is down, or not InfluxDB 2 (here a
    real 1.x, which has no /api/v2), stops init with one line and writes no tokens."""
    (initialised.STATE / "store-tokens.json").unlink()
    url = (
        f"http://127.0.0.1:{free_port()}"
        if server == "down"
        else request.getfixturevalue("influxdb").url
    )
    monkeypatch.setenv("INFLUXDB_URL", url)
    monkeypatch.setenv("INFLUXDB_ORG", "shopfloor")
    monkeypatch.setenv("INFLUXDB_BUCKET", "shopfloor")
    assert initialised.run([]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: InfluxDB ") and error.count("\n") == 1, error
    assert ("unreachable" if server == "down" else "refused") in error
    assert not (initialised.STATE / "store-tokens.json").exists()


def run_with_credentials(
    tmp_path: Path, credentials: str | None
) -> subprocess.CompletedProcess[str]:
    """The components' entry point, its credentials file below `tmp_path`, and `env` standing in
    for `shopfloor` so that the output is the environment the component would get."""
    folder = tmp_path / "run" / "shopfloor"
    folder.mkdir(parents=True)
    if credentials is not None:
        (folder / "credentials.env").write_text(credentials)
    script = tmp_path / "with-credentials.sh"
    script.write_text(WITH_CREDENTIALS.read_text().replace("/run/shopfloor", str(folder)))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "shopfloor").symlink_to(shutil.which("env") or "/usr/bin/env")
    path = f"{bin_dir}:{os.environ['PATH']}"
    return subprocess.run(
        ["sh", str(script)], env={"PATH": path}, capture_output=True, text=True, timeout=30
    )


def test_the_entry_point_hands_its_service_the_credentials_init_wrote(
    initialised: Any, tmp_path: Path
) -> None:
    written = (initialised.CREDENTIALS / "gateway" / "credentials.env").read_text()
    password = 'it\'s $(not) a `command`; "quoted"'
    broker = {"username": "u", "password": password}
    odd = initialised.service_credentials("gateway", broker, {"gateway": "t"})
    for credentials in (written, odd):
        result = run_with_credentials(tmp_path / str(len(credentials)), credentials)
        assert result.returncode == 0, result.stderr
        environment_lines = result.stdout.splitlines()
        for key, value in credentials_lines(credentials).items():
            assert f"{key}={value}" in environment_lines
    assert urlsplit(credentials_lines(odd)["SHOPFLOOR_BROKER_URL"]).password == quote(
        password, safe=""
    )


def credentials_lines(text: str) -> dict[str, str]:
    return {
        key: shlex.split(value)[0]
        for key, _, value in (line.partition("=") for line in text.splitlines())
    }


def test_the_entry_point_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    result = run_with_credentials(tmp_path, None)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "credentials.env is missing" in result.stderr
    assert result.stdout == ""
