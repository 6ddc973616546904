"""docker-compose.yml: it renders with the example settings, and its services run real
`shopfloor` subcommands configured through real option environment variables."""

from __future__ import annotations

import getpass
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest
import typer.main
import yaml
from typer.core import TyperGroup

from launcher.cli import app
from tests.conftest import MQTT_PASSWORD, assert_no_secret_in_logs
from tests.servers import ServerProcess, free_port, require_binary

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
MOSQUITTO_ENTRYPOINT = ROOT / "deploy" / "mosquitto" / "entrypoint.sh"
SHOPFLOOR_SCRIPT = Path(sys.executable).parent / "shopfloor"

SERVICES = {"mosquitto", "influxdb", "simulators", "edge", "gateway", "analytics", "dashboard"}
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


def test_components_reach_each_other_with_the_env_file_credentials(
    rendered: dict[str, Any],
) -> None:
    settings = read_env_file(ENV_EXAMPLE)
    services = rendered["services"]
    broker = f"mqtt://{settings['MQTT_USERNAME']}:{settings['MQTT_PASSWORD']}@mosquitto:1883"
    for name in ("simulators", "edge", "gateway"):
        assert environment(services[name])["SHOPFLOOR_BROKER_URL"] == broker, name
    for name in ("gateway", "analytics", "dashboard"):
        env = environment(services[name])
        assert env["SHOPFLOOR_STORE_URL"] == "http://influxdb:8086", name
        assert env["SHOPFLOOR_STORE_DATABASE"] == settings["INFLUXDB_BUCKET"], name
        assert env["SHOPFLOOR_STORE_TOKEN"] == settings["INFLUXDB_TOKEN"], name
        assert env["SHOPFLOOR_STORE_ORG"] == settings["INFLUXDB_ORG"], name


def test_built_services_are_the_components() -> None:
    assert set(built_services()) == SERVICES - {"mosquitto", "influxdb"}


@pytest.mark.parametrize("service", built_services())
def test_service_command_is_a_shopfloor_subcommand(service: str) -> None:
    definition = compose_services()[service]
    assert "entrypoint" not in definition, "the image's entrypoint is `shopfloor`"
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
    assert set(secrets) == {"MQTT_PASSWORD", "INFLUXDB_PASSWORD", "INFLUXDB_TOKEN", "API_TOKEN"}
    assert all(value.startswith("change-me") for value in secrets.values())


def container_script(text: str, root: Path) -> str:
    """`text` with the container's folders of the broker moved below `root`."""
    folders = {"/shopfloor/mosquitto/": f"{root}/shopfloor/", "/mosquitto/": f"{root}/mosquitto/"}
    return re.sub("|".join(folders), lambda found: folders[found.group()], text)


class ComposeMosquitto(ServerProcess):
    """Mosquitto started by the compose file's entry point, its folders below `workdir`."""

    def __init__(self, workdir: Path, password: str):
        port = free_port()
        for folder in ("shopfloor", "mosquitto/config", "mosquitto/data"):
            (workdir / folder).mkdir(parents=True)
        (workdir / "shopfloor" / "mosquitto.conf").write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous false\n"
            f"password_file {workdir}/mosquitto/config/passwd\nuser {getpass.getuser()}\n"
        )
        script = workdir / "entrypoint.sh"
        script.write_text(container_script(MOSQUITTO_ENTRYPOINT.read_text(), workdir))
        env = {
            "PATH": f"{Path(require_binary('mosquitto')).parent}:{os.environ['PATH']}",
            "MQTT_USERNAME": "shopfloor",
            "MQTT_PASSWORD": password,
        }
        super().__init__("mosquitto", ["sh", str(script)], port, workdir, env)

    def health_check(self) -> subprocess.CompletedProcess[str]:
        """The compose file's health check, run in the container's shell without the account."""
        command = compose_services()["mosquitto"]["healthcheck"]["test"]
        assert command[0] == "CMD-SHELL"
        shell = container_script(command[1].replace("$$", "$"), self.workdir)
        return subprocess.run(
            ["sh", "-c", shell.replace("-p 1883", f"-p {self.port}")],
            env={"PATH": f"{Path(require_binary('mosquitto_sub')).parent}:{os.environ['PATH']}"},
            capture_output=True,
            text=True,
            timeout=30,
        )


@pytest.fixture
def compose_mosquitto(tmp_path: Path) -> Iterator[ComposeMosquitto]:
    server = ComposeMosquitto(tmp_path / "container", MQTT_PASSWORD)
    server.start()
    yield server
    server.stop()
    assert_no_secret_in_logs(server.workdir)


def test_mosquitto_health_check_logs_in_without_the_password_on_its_command_line(
    compose_mosquitto: ComposeMosquitto,
) -> None:
    command = compose_services()["mosquitto"]["healthcheck"]["test"][1]
    assert "PASSWORD" not in command and "-P" not in command
    config = compose_mosquitto.workdir / "mosquitto" / "config"
    for written in ("passwd", "mosquitto_sub"):
        assert (config / written).stat().st_mode & 0o777 == 0o600, written
    assert MQTT_PASSWORD not in (config / "passwd").read_text()  # hashed in place
    healthy = compose_mosquitto.health_check()
    assert healthy.returncode == 0, healthy.stderr
    # It logs in with the options file, not with something else that happens to work.
    (config / "mosquitto_sub").write_text("-u shopfloor\n-P not-the-password\n")
    assert compose_mosquitto.health_check().returncode != 0


def test_mosquitto_entrypoint_hands_the_password_only_to_shell_built_ins() -> None:
    """A command's arguments show in every process list; `:`, `case` and `printf` run in the
    shell itself."""
    lines = MOSQUITTO_ENTRYPOINT.read_text().splitlines()
    using = [
        line.split()[0] for line in lines if "$MQTT_PASSWORD" in line or "{MQTT_PASSWORD" in line
    ]
    assert using and set(using) <= {":", "case", "printf"}, using


def test_mosquitto_refuses_the_placeholder_password_in_one_line(tmp_path: Path) -> None:
    server = ComposeMosquitto(tmp_path, read_env_file(ENV_EXAMPLE)["MQTT_PASSWORD"])
    result = subprocess.run(server.argv, env=server.env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr == (
        "error: MQTT_PASSWORD is still the placeholder of .env.example (change-me...): "
        "set a secret of your own\n"
    )
