"""Loading YAML files into pydantic models with one-line errors that name file, line and field.

Every YAML file of the platform (plant model, later scenarios and edge configs) goes through
`load_yaml_model`, so a user always gets `FILE:LINE: FIELD: problem` instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)


class LocatedValueError(ValueError):
    """Raised by a model validator to point at a field below the model (e.g. a bad reference)."""

    def __init__(self, loc: Sequence[int | str], message: str):
        self.loc = tuple(loc)
        super().__init__(message)


class ConfigError(Exception):
    """A file the user wrote is wrong; the message is one line and names where."""

    def __init__(self, file: str | Path, message: str, line: int | None = None, field: str = ""):
        self.file = str(file)
        self.line = line
        self.field = field
        self.message = message
        where = self.file if line is None else f"{self.file}:{line}"
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


def field_path(loc: Sequence[int | str]) -> str:
    """Render a pydantic location as `areas[0].lines[1].id`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _node_at(root: yaml.Node, loc: Sequence[int | str]) -> yaml.Node:
    """The deepest YAML node along `loc`: the value itself, or its nearest existing parent."""
    node = root
    for depth, part in enumerate(loc, 1):
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            entry = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if entry is not None:
                key, child = entry
                # A block that opens on the next line is best shown by its key.
                if depth == len(loc) and child.start_mark.line != key.start_mark.line:
                    child = key
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if 0 <= part < len(node.value) else None
        if child is None:
            break
        node = child
    return node


def _one_line(text: str) -> str:
    return " ".join(text.split())


def parse_yaml(path: Path) -> tuple[object, yaml.Node | None]:
    """Read a YAML file, returning its data and its node tree (for line numbers)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, f"cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "file is not UTF-8 text") from None
    try:
        return yaml.safe_load(text), yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(
            path, f"invalid YAML: {_one_line(exc.problem or str(exc))}", line
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, f"invalid YAML: {_one_line(str(exc))}") from None


def validation_error(path: Path, root: yaml.Node | None, exc: ValidationError) -> ConfigError:
    """Turn the most telling pydantic error into a located one-line ConfigError.

    An unknown key is reported before a missing one: a misspelt field causes both, and the
    misspelling is what the user has to fix.
    """
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] == "missing")
    first = errors[0]
    loc = [part for part in first["loc"] if part not in ("function-after", "function-before")]
    cause = first.get("ctx", {}).get("error")
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field (check its spelling)"
    if isinstance(cause, LocatedValueError):
        loc, message = [*loc, *cause.loc], str(cause)
    line = _node_at(root, loc).start_mark.line + 1 if root is not None else None
    more = exc.error_count() - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    field = field_path(loc) or "(top level)"
    return ConfigError(path, _one_line(message) + suffix, line, field)


def locate(path: Path, loc: Sequence[int | str]) -> int | None:
    """The line of the YAML node at `loc` (or its nearest parent), for checks made after loading."""
    _, root = parse_yaml(path)
    return _node_at(root, loc).start_mark.line + 1 if root is not None else None


def load_yaml_model(path: str | Path, model: type[ModelT]) -> ModelT:
    """Load and validate a YAML file, raising ConfigError with file, line and field."""
    path = Path(path)
    data, root = parse_yaml(path)
    if data is None:
        raise ConfigError(path, "file is empty", 1)
    try:
        return model.model_validate(data, context={"file": str(path)})
    except ValidationError as exc:
        raise validation_error(path, root, exc) from None
