"""Load a topology file; every problem becomes one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from framework.config.model import Topology
from framework.errors import ConfigError

TOPOLOGY_DIR = Path(__file__).resolve().parents[2] / "topologies"
DEFAULT_TOPOLOGY = TOPOLOGY_DIR / "virtual.yaml"


def _field_path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or "(top level)"


def load_topology(path: str | Path) -> Topology:
    """Read and validate a topology file.

    Raises:
        ConfigError: one line naming the file, the first bad field and what was expected.
    """
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read topology: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{file}:{where}: not valid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = len(exc.errors()) - 1
        message = first["msg"].removeprefix("Value error, ")
        got = first.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        suffix = f" (+{more} more)" if more else ""
        raise ConfigError(
            f"{file}: {_field_path(first['loc'])}: {message}{shown}{suffix}"
        ) from None
