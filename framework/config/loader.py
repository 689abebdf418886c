"""Load a topology file; every problem becomes one line naming the file and the field."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml
from pydantic import ValidationError
from yaml.reader import ReaderError

from framework.config.model import Topology
from framework.errors import ConfigError

TOPOLOGY_DIR = Path(__file__).resolve().parents[2] / "topologies"
DEFAULT_TOPOLOGY = TOPOLOGY_DIR / "virtual.yaml"

# The sample lab.yaml (3 hosts, 4 NICs, a VM) is under 3 KB, so 256 KiB is room for some
# hundreds of hosts. PyYAML parses about 200-500 KB/s here, so the largest accepted file
# loads in about a second; without a limit a 60 MB file ran for minutes with no output.
MAX_TOPOLOGY_BYTES = 256 * 1024
# YAML aliases (*name) reuse a value without copying it, so a small file can stand for an
# exponentially large document ("billion laughs") that validation would walk for ever.
# 100,000 values is far above any real topology (lab.yaml has about 200).
MAX_TOPOLOGY_VALUES = 100_000

# The C parser when PyYAML has it (2-3 times faster); same documents, same errors.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")

Location = tuple[int | str, ...]


def _field_path(location: Location) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":  # pydantic's marker for a bad mapping key: the key is the field
            continue
        else:
            path += ("." if path else "") + str(part)
    return path or "(top level)"


def load_topology(path: str | Path) -> Topology:
    """Read and validate a topology file.

    Raises:
        ConfigError: one line naming the file, the first bad field (or line) and what was
            expected.
    """
    file = Path(path)
    data, numbers = _parse(file, _read_text(file))
    if data is None:
        raise ConfigError(f"{file}: no topology in it (the file is empty or only comments)")
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{file}: {_describe(exc, numbers)}") from None


def _read_text(file: Path) -> str:
    """The file's text: at most MAX_TOPOLOGY_BYTES of UTF-8."""
    try:
        with file.open("rb") as stream:
            info = os.fstat(stream.fileno())
            # Read one byte more than allowed: pipes and devices have no size to ask.
            raw = stream.read(MAX_TOPOLOGY_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read topology: {exc.strerror or exc}") from None
    if len(raw) > MAX_TOPOLOGY_BYTES:
        size = f" is {_size(info.st_size)}," if stat.S_ISREG(info.st_mode) else ""
        raise ConfigError(
            f"{file}:{size} over the {_size(MAX_TOPOLOGY_BYTES)} limit for a topology file "
            "(is it the right file?)"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{file}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); a topology is a YAML text file"
        ) from None


def _size(count: int) -> str:
    if count >= 1 << 20:
        return f"{count / (1 << 20):.1f} MiB"
    return f"{count / 1024:g} KiB" if count >= 1024 else f"{count} bytes"


def _parse(file: Path, text: str) -> tuple[object, dict[Location, str]]:
    """The YAML document, and the source text of each number in it by location."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        numbers = _check_nodes(file, node)
        return loader.construct_document(node), numbers
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: {_yaml_problem(exc, text)}") from None
    except RecursionError:
        raise ConfigError(f"{file}: not a topology: nested too deeply") from None
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    line: int | None = None
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        line = exc.problem_mark.line + 1
    elif isinstance(exc, ReaderError) and isinstance(exc.position, int):  # a bad character
        line = text.count("\n", 0, exc.position) + 1
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{f'line {line}: ' if line else ''}not valid YAML: {problem}"


def _check_nodes(file: Path, root: yaml.Node) -> dict[Location, str]:
    """Refuse duplicate keys and alias bombs; note how each number was written.

    PyYAML keeps the last of two equal keys without a word, so a host defined twice
    silently lost its first definition.
    """
    numbers: dict[Location, str] = {}
    stack: list[tuple[yaml.Node, Location]] = [(root, ())]
    visited = 0
    while stack:
        node, location = stack.pop()
        visited += 1
        if visited > MAX_TOPOLOGY_VALUES:
            raise ConfigError(
                f"{file}: its aliases (*name) expand to over {MAX_TOPOLOGY_VALUES:,} values; "
                "not a topology"
            )
        if isinstance(node, yaml.ScalarNode) and node.tag in _NUMBER_TAGS:
            numbers[location] = node.value
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((child, (*location, i)) for i, child in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first_line: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if key.tag == _MERGE_TAG:  # `<<: *base`: keys written here override base's
                    stack.append((value, location))
                    continue
                name = key.value if isinstance(key, yaml.ScalarNode) else str(id(key))
                line = key.start_mark.line + 1
                if (key.tag, name) in first_line:
                    earlier = first_line[key.tag, name]
                    lines = f"lines {earlier} and {line}" if earlier != line else f"line {line}"
                    raise ConfigError(
                        f"{file}: {_field_path((*location, name))}: defined twice, at {lines} "
                        "(YAML would silently keep only the last)"
                    )
                first_line[key.tag, name] = line
                stack.append((value, (*location, name)))
    return numbers


def _describe(exc: ValidationError, numbers: dict[Location, str]) -> str:
    """The first validation error as `field.path: what was expected (got ...)`."""
    errors = exc.errors()
    first = errors[0]
    location = tuple(first["loc"])
    got = first.get("input")
    written = numbers.get(location)
    if first["type"] == "string_type" and written is not None:
        # `version: 22.10` is the number 22.1 to YAML: say so rather than "got 22.1".
        read_as = "a number" if written == str(got) else f"the number {got!r}"
        message = (
            f"expected text, but YAML reads the unquoted {written} as {read_as}; "
            f'put it in quotes: "{written}"'
        )
    else:
        message = first["msg"].removeprefix("Value error, ")
        if not isinstance(got, dict | list) and got is not None:
            message += f" (got {got!r})"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{_field_path(location)}: {message}{more}"
