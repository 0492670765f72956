"""Reading a config file into plain values, safely: bounded time and memory for any input, and every
refusal names the file, the line and how to fix it (exit 2).

The YAML is read in one pass over the parser's events, without recursion, and the values are built
there (as PyYAML's SafeLoader builds them, dates left as text): a key given twice, nesting deeper than
MAX_DEPTH and aliases that would expand past MAX_ALIAS_VALUES values ("billion laughs") are refused
before anything walks the values. The pass also records the line of every key path for later messages.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import yaml

from mt5tester.errors import ConfigError

# Real configs are a few kilobytes, nest about 6 levels deep and use a handful of aliases.
MAX_CONFIG_BYTES = 4_000_000
MAX_DEPTH = 64  # nested mappings/sequences, aliases included (deeper values would exhaust the stack)
MAX_ALIAS_VALUES = 100_000  # values added by expanding aliases

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_STR = "tag:yaml.org,2002:str"
_MERGE = object()  # the key of a '<<' merge (YAML 1.1)
_VALUE_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null", "binary", "timestamp")}
_PARSER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
_SAVE_UTF8 = "save the file as UTF-8 (the config must be UTF-8 text)"


class _Resolver(yaml.resolver.Resolver):
    """YAML 1.1 implicit types, but dates stay text: pydantic parses them and names the key of an
    impossible one (2019-02-30) instead of the YAML layer failing without a key."""


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}


def read_config_text(p: Path) -> str:
    """The file as text; anything but UTF-8 (a UTF-8 BOM is allowed) is refused with the line."""
    try:
        size = p.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{p}: {size:,} bytes; a config is at most {MAX_CONFIG_BYTES:,} bytes (is this the config?)"
            )
        data = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read the config: {e.strerror or e}") from None
    for bom, name in (
        (codecs.BOM_UTF32_LE, "UTF-32"),
        (codecs.BOM_UTF32_BE, "UTF-32"),
        (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16"),
    ):
        if data.startswith(bom):
            raise ConfigError(f"{p}:1: the file is {name} text (byte-order mark); {_SAVE_UTF8}")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise ConfigError(f"{p}:{line}: NUL byte at offset {nul}: not UTF-8 text (UTF-16?); {_SAVE_UTF8}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConfigError(
            f"{p}:{line}: byte 0x{data[e.start]:02x} at offset {e.start} is not UTF-8; {_SAVE_UTF8}"
        ) from None


def read_yaml(text: str, source: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """The YAML document's value and the line of every key path (and list item) in it.

    Raises ConfigError (file:line and the reason) for the refusals above, yaml.YAMLError (with its
    marks) for text that is not YAML.
    """
    reader = _Reader(source)
    return reader.read(text), reader.lines


class _Open:
    """A mapping or sequence being read."""

    def __init__(self, value: Any, path: tuple[Any, ...] | None, anchor: str | None, line: int) -> None:
        self.value, self.path, self.anchor, self.line = value, path, anchor, line
        self.size = 1  # values inside, aliases expanded
        self.height = 1  # nesting levels inside, aliases expanded
        self.key: Any = None  # mappings: the key whose value comes next
        self.has_key = False
        self.key_lines: dict[Any, int] = {}
        self.merges: list[Any] = []  # mappings: values of '<<' keys, merged at the end


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[tuple[Any, ...], int] = {}
        self.anchors: dict[str, tuple[Any, int, int]] = {}  # anchor -> (value, size, height)
        self.stack: list[_Open] = []
        self.added = 0  # values added by aliases
        self.resolver = _Resolver()
        self.constructor = yaml.constructor.SafeConstructor()

    def fail(self, line: int, reason: str) -> ConfigError:
        return ConfigError(f"{self.source}:{line}: {reason}")

    def scalar(self, ev: yaml.ScalarEvent, line: int) -> Any:
        tag = ev.tag
        if tag is None:
            tag = self.resolver.resolve(yaml.ScalarNode, ev.value, ev.implicit) if ev.implicit[0] else _STR
        elif tag == "!":
            tag = _STR
        if tag == _STR:
            return ev.value
        if tag not in _VALUE_TAGS:
            raise self.fail(line, f"tag {tag} is not supported for a single value in a config; remove it")
        node = yaml.ScalarNode(tag, ev.value, style=ev.style)
        construct = yaml.constructor.SafeConstructor.yaml_constructors[tag]
        try:
            return construct(self.constructor, node)
        except (ValueError, TypeError, OverflowError) as e:
            raise self.fail(line, f"invalid YAML: {e}") from None
        except yaml.YAMLError as e:
            raise self.fail(line, f"invalid YAML: {getattr(e, 'problem', None) or e}") from None

    def place(self, value: Any, is_merge_key: bool, line: int) -> tuple[Any, ...] | None:
        """Put ``value`` into the open collection; return its key path (None inside keys)."""
        if not self.stack:
            return ()
        parent = self.stack[-1]
        if isinstance(parent.value, list):
            parent.value.append(value)
            path = None if parent.path is None else (*parent.path, len(parent.value) - 1)
            if path is not None:
                self.lines[path] = line
            return path
        if not parent.has_key:  # this value is a key
            if is_merge_key:
                parent.key, parent.has_key = _MERGE, True
                return None
            try:
                first = parent.key_lines.get(value)
            except TypeError:
                raise self.fail(line, "a key must be a single value, not a list or mapping") from None
            if first is not None:
                raise self.fail(
                    line,
                    f"duplicate key '{value}' (first at line {first}); YAML would silently keep the last "
                    "value: remove one of them",
                )
            parent.key_lines[value] = line
            parent.key, parent.has_key = value, True
            if parent.path is not None:
                self.lines[(*parent.path, value)] = line
            return None
        parent.has_key = False
        if parent.key is _MERGE:
            parent.merges.append(value)
            return None
        parent.value[parent.key] = value
        return None if parent.path is None else (*parent.path, parent.key)

    def grow(self, size: int, height: int) -> None:
        if self.stack:
            self.stack[-1].size += size
            self.stack[-1].height = max(self.stack[-1].height, height + 1)

    def close(self, line: int) -> Any:
        done = self.stack.pop()
        if isinstance(done.value, dict) and done.merges:
            done.value = self.merged(done, line)
        if done.anchor:
            self.anchors[done.anchor] = (done.value, done.size, done.height)
        self.grow(done.size, done.height)
        self.place(done.value, False, done.line)
        return done.value

    def merged(self, m: _Open, line: int) -> dict[Any, Any]:
        """'<<' merge keys (YAML 1.1): keys of the merged mappings that the mapping does not set;
        an earlier mapping in a '<<' list wins over a later one."""
        sources: list[Any] = []
        for merge in m.merges:
            sources.extend(merge if isinstance(merge, list) else [merge])
        if not all(isinstance(s, dict) for s in sources):
            raise self.fail(line, "'<<' (merge) needs a mapping or a list of mappings")
        out: dict[Any, Any] = {}
        for s in reversed(sources):
            out.update(s)
        out.update(m.value)
        return out

    def read(self, text: str) -> Any:
        documents = 0
        result: Any = None
        for ev in yaml.parse(text, Loader=_PARSER):
            line = (ev.start_mark.line if ev.start_mark else 0) + 1
            if isinstance(ev, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                value = self.close(line)
                if not self.stack:
                    result = value
                continue
            if isinstance(ev, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self.fail(line, "a second YAML document ('---'); a config is one document")
            if not isinstance(ev, yaml.NodeEvent):
                continue
            depth = len(self.stack) + 1
            if isinstance(ev, yaml.AliasEvent):
                if ev.anchor not in self.anchors:  # undefined, or inside its own anchor (recursive)
                    raise self.fail(
                        line,
                        f"alias '*{ev.anchor}' needs a complete '&{ev.anchor}' value before it (an alias "
                        "may not refer to the value that contains it)",
                    )
                value, size, height = self.anchors[ev.anchor]
                self.added += size
                if self.added > MAX_ALIAS_VALUES:
                    raise self.fail(
                        line,
                        f"alias '*{ev.anchor}' expands the config beyond {MAX_ALIAS_VALUES:,} values "
                        "(nested aliases); write the values out or use fewer aliases",
                    )
                if depth - 1 + height > MAX_DEPTH:
                    raise self.fail(
                        line, f"alias '*{ev.anchor}' nests the config deeper than {MAX_DEPTH} levels"
                    )
                self.grow(size, height)
                self.place(value, False, line)
                result = value
            elif isinstance(ev, yaml.ScalarEvent):
                awaiting_key = bool(self.stack) and isinstance(self.stack[-1].value, dict)
                awaiting_key = awaiting_key and not self.stack[-1].has_key
                is_merge = awaiting_key and ev.tag is None and ev.implicit[0] and ev.value == "<<"
                value = None if is_merge else self.scalar(ev, line)
                if ev.anchor:
                    self.anchors[ev.anchor] = (value, 1, 0)
                self.grow(1, 0)
                self.place(value, is_merge, line)
                result = value
            else:
                if depth > MAX_DEPTH:
                    raise self.fail(
                        line,
                        f"the config nests deeper than {MAX_DEPTH} levels; a config needs about 6 (check the "
                        "brackets and indentation)",
                    )
                tag = getattr(ev, "tag", None)
                if tag not in (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"):
                    raise self.fail(line, f"tag {tag} is not supported in a config; remove it")
                is_map = isinstance(ev, yaml.MappingStartEvent)
                path = self.child_path()
                self.stack.append(_Open({} if is_map else [], path, ev.anchor, line))
        return result

    def child_path(self) -> tuple[Any, ...] | None:
        """The key path of a collection about to open (None inside keys or merges)."""
        if not self.stack:
            return ()
        parent = self.stack[-1]
        if isinstance(parent.value, list):
            return None if parent.path is None else (*parent.path, len(parent.value))
        if not parent.has_key or parent.key is _MERGE or parent.path is None:
            return None
        return (*parent.path, parent.key)
