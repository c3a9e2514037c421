"""The one YAML loader for every file a person writes: taxonomy, zones, cameras, review settings, dataset recipes.

PyYAML's `safe_load` is safe from code execution but not from a 600-byte "billion laughs" file: aliases
of aliases make a tree of 10^9 values out of a few nodes, and whatever walks it (validation, a depth
check, an error message) never finishes. So, on top of `yaml.SafeLoader`, this loader

- refuses a file over `MAX_CONFIG_BYTES`, non-UTF-8 text and NUL bytes (before parsing);
- counts, before anything is built, how many values the aliases would add, and refuses more than
  `MAX_ALIAS_VALUES` (a merge key `<<: *defaults` per camera stays far below) and aliases that contain
  themselves;
- refuses a key given twice in one mapping (PyYAML keeps the last), while a merge key's keys may be
  overridden, as YAML means them to be;
- reads `2026-11-01` as the text it looks like, not a date: no config field is a date, and a camera
  named after its install day must not be refused;
- refuses nesting deeper than `MAX_DEPTH`.

Every problem is ONE `ConfigError` line naming the file (and the line where YAML knows it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from streetwatch.detector.errors import ConfigError

__all__ = ["MAX_ALIAS_VALUES", "MAX_CONFIG_BYTES", "MAX_DEPTH", "load_yaml_text", "read_yaml"]

MAX_CONFIG_BYTES = 1 << 20  # a camera list of thousands fits in far less; more is a wrong file
MAX_DEPTH = 20  # the deepest real config nests ~6 levels
MAX_ALIAS_VALUES = 100_000  # 1,000 cameras each merging 40 default keys and values use 80,000
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _AliasBomb(yaml.YAMLError):
    """The composed document would expand to too many values, or an alias contains itself."""


class _ConfigLoader(yaml.SafeLoader):
    """yaml.SafeLoader with unique keys (merge keys aside) and no implicit dates."""

    # a copy: removing the resolver from SafeLoader itself would change every other user of PyYAML
    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue  # `<<: *d`: its keys are defaults that the explicit keys may override
                key = self.construct_object(key_node, deep=deep)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:
                    continue  # an unhashable key: the base class reports it
                if first is not key_node:  # two key nodes, one key (on one line too: `{id: a, id: b}`)
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first given on line {first.start_mark.line + 1})",
                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_aliases(root: yaml.Node) -> None:
    """Raise _AliasBomb when the aliases in `root` would add more than MAX_ALIAS_VALUES values.

    An alias is the very node it names, so the composed document is a graph of few nodes; the size
    of the tree it stands for is counted bottom-up, once per node, without building it.
    """
    sizes: dict[int, int] = {}  # id(node) -> values in the tree the node stands for
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            continue
        if key in sizes:
            continue
        if key in on_path:  # the stack is depth-first: a node met again below itself contains itself
            raise _AliasBomb(f"an alias contains itself (line {node.start_mark.line + 1})")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    added = sizes[id(root)] - len(sizes)
    if added > MAX_ALIAS_VALUES:
        raise _AliasBomb(f"aliases expand to {added:,} more values (limit {MAX_ALIAS_VALUES:,}): an alias bomb, "
                         "not a config; write the values out")


def _depth(value: Any) -> int:
    """Nesting depth of parsed YAML, without recursion (a hostile file cannot blow the stack here)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def load_yaml_text(text: str, source: Path | str) -> Any:
    """Parse config text read from `source` (named in errors); any problem is ONE ConfigError line.

    Example:
        >>> load_yaml_text("d: &d {a: 1}\\ne: {<<: *d, b: 2}\\nname: 2026-11-01\\n", "x.yaml")
        {'d': {'a': 1}, 'e': {'a': 1, 'b': 2}, 'name': '2026-11-01'}
    """
    if len(text) > MAX_CONFIG_BYTES:  # characters: at least as many bytes
        raise ConfigError(f"{source}: {len(text):,} characters is too big for a config file "
                          f"(limit {MAX_CONFIG_BYTES:,} bytes)")
    if "\x00" in text:
        raise ConfigError(f"{source}: holds NUL bytes: not a text file")
    loader = _ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(node)
        value = loader.construct_document(node)
    except _AliasBomb as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        raise ConfigError(f"{source}:{where} not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to be a config file") from None
    finally:
        loader.dispose()
    if _depth(value) > MAX_DEPTH:
        raise ConfigError(f"{source}: nested more than {MAX_DEPTH} levels deep: not a streetwatch config")
    return value


def read_yaml(path: Path | str) -> Any:
    """Read and parse the YAML config file at `path`; any problem is ONE ConfigError line naming the file.

    Example:
        >>> read_yaml(Path("examples/cameras.yaml"))["cameras"][0]["id"]
        'gate-east'
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a folder, not a YAML file") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {len(data):,} bytes is too big for a config file (limit {MAX_CONFIG_BYTES:,})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          "save the file as UTF-8") from None
    return load_yaml_text(text, path)
