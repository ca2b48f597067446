"""YAML read with its line numbers, so every problem can point an editor at its line.

PyYAML's composed node tree keeps a start mark per node; the plain Python data is built
from that same tree. Duplicate keys, which PyYAML would silently collapse, are reported, and
so is every value that cannot be built (an impossible date such as 2026-02-30 written
unquoted, `!!int abc`, a `!!python/...` tag): each at its own line and field, never as an
exception, so one bad file cannot stop the others from loading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dialplan.errors import ConfigError, Problem

MAX_EXPANDED_NODES = 100_000
"""Values a file may hold once its aliases are expanded: far above any real configuration
file, far below what aliases nested a few levels deep multiply into ("billion laughs")."""


class _Loader(yaml.SafeLoader):
    """SafeLoader (no Python object tags) that keeps the composed tree, and that builds
    each value on its own: a value that cannot be built becomes None and is noted with its
    node, so the rest of the document is still built and checked."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.failures: list[tuple[yaml.Node, str]] = []

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node in self.recursive_objects:  # an alias inside the very value it names
            self.failures.append((node, "an alias refers to the value that contains it"))
            return None
        # Always deep, whatever the caller asks: a mapping or list is then built within this
        # call, so its own failures (a bad merge key) are caught here, at its node, never
        # later in construct_document.
        del deep
        try:
            return super().construct_object(node, deep=True)
        except Exception as error:  # any value PyYAML cannot build, whatever the reason
            self.recursive_objects.pop(node, None)
            self.constructed_objects[node] = None
            self.failures.append((node, _construction_message(node, error)))
            return None


_SHORT_TAG = "tag:yaml.org,2002:"
_TAG_KINDS = {
    "timestamp": "a date",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "binary": "base64 data",
}


def _construction_message(node: yaml.Node, error: Exception) -> str:
    """Why a value cannot be built, in a line an admin can act on."""
    tag = node.tag.removeprefix(_SHORT_TAG) if node.tag.startswith(_SHORT_TAG) else None
    shown = f"!!{tag}" if tag is not None else node.tag
    if isinstance(error, yaml.constructor.ConstructorError) and (
        "could not determine a constructor" in (error.problem or "")
    ):
        return (
            f"the tag {shown} is not allowed: write plain values (text, numbers, dates, lists "
            "and mappings)"
        )
    if isinstance(node, yaml.ScalarNode):
        what = _TAG_KINDS.get(tag or "", f"a value of tag {shown}")
        # a date's reason says what is wrong with it (day is out of range for month); the
        # others' only repeat the value
        why = f": {error}" if tag == "timestamp" and isinstance(error, ValueError) else ""
        return f"{node.value} is not {what}{why}"
    reason = error.problem if isinstance(error, yaml.MarkedYAMLError) else None
    return f"cannot be read: {reason or error}"


@dataclass
class YamlSource:
    """One parsed YAML file: its data, its node tree, and problems seen while parsing."""

    file: str
    data: Any
    root: yaml.Node | None
    problems: list[Problem] = field(default_factory=list)

    def line_of(self, path: tuple[Any, ...]) -> int:
        """The line of the deepest field on `path` that exists (1-based): a key's own line,
        or a list item's first line."""
        node = self.root
        line = node.start_mark.line + 1 if node is not None else 1
        for step in path:
            found = _child(node, step)
            if found is None:
                break
            line, node = found
        return line

    def problem(self, path: tuple[Any, ...], message: str) -> Problem:
        return Problem(self.file, self.line_of(path), format_path(path), message)


def _child(node: yaml.Node | None, step: Any) -> tuple[int, yaml.Node] | None:
    """The line naming `step` under `node` and the node it names."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if _key_matches(key_node, step):
                return key_node.start_mark.line + 1, value_node
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
        item = node.value[step]
        return item.start_mark.line + 1, item
    return None


def _key_matches(key_node: yaml.Node, step: Any) -> bool:
    return isinstance(key_node, yaml.ScalarNode) and key_node.value == str(step)


def format_path(path: tuple[Any, ...]) -> str:
    """('rules', 2, 'split') -> 'rules[2].split'."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += f".{step}" if text else str(step)
    return text or "(file)"


_BARE_STAR = ' (YAML reads a bare * as an alias: write it in quotes, "*")'
"""A menu's `*` key is where a bare `*` comes naturally to whoever writes a plan."""


def read_config_text(path: Path) -> str:
    """A configuration file's text; a file that cannot be read, or is not UTF-8 (an editor
    that saved GBK), is refused with the line and column of its first unreadable byte."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError([Problem(str(path), 1, "(file)", f"cannot read: {error}")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line = data.count(b"\n", 0, error.start) + 1
        column = len(data[line_start : error.start].decode()) + 1
        message = (
            f"not UTF-8 text: byte 0x{data[error.start]:02x} at column {column} cannot be "
            "read; save the file as UTF-8 (an editor's GBK or GB18030 is not read)"
        )
        raise ConfigError([Problem(str(path), line, "(file)", message)]) from None


def _syntax_reason(error: yaml.YAMLError, text: str, line: int) -> str:
    """PyYAML's reason, with what to look for: its words name the parser's state, and the
    mistake behind them (a tab, a quote or bracket left open, an indent) is often above."""
    reason = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None) or ""
    if context == "while scanning an alias":
        return reason + _BARE_STAR
    if reason.startswith("but ") and context:  # PyYAML splits one sentence in two
        reason = f"{context}, {reason}"
    if context == "expected a single document in the stream":
        return f"{reason} (the file holds one document: remove this --- line)"
    if "'\\t'" in reason:
        return "a tab character; indent with spaces (YAML does not accept tabs)"
    opened = getattr(error, "context_mark", None)
    if context == "while scanning a quoted scalar" and opened is not None:
        # the quote runs on to the end of the file: where it opened is what to fix
        quote = text[opened.index] if opened.index < len(text) else '"'
        return f"{reason} (the {quote} opened at line {opened.line + 1} is not closed)"
    for kind, bracket in (("flow sequence", "["), ("flow mapping", "{")):
        if context.endswith(kind) and opened is not None:
            return f"{reason} (the {bracket} at line {opened.line + 1} is not closed)"
    if reason.startswith("expected <block end>") or reason.startswith("mapping values"):
        quoted = _unclosed_quote_line(text.splitlines()[: line - 1])
        if quoted is not None:
            return f'{reason} (the " opened at line {quoted} is not closed)'
        return f"{reason} (check this line's indentation against the lines above)"
    return reason


def _unclosed_quote_line(lines: list[str]) -> int | None:
    """The last line above with an odd number of double quotes (its comment left out): a
    quoted value left open there runs on until the next quote, lines below."""
    for number in range(len(lines), 0, -1):
        content = lines[number - 1]
        if content.lstrip().startswith("#"):
            continue
        if content.split(" #", 1)[0].count('"') % 2:
            return number
    return None


def compose_yaml(file: str, text: str) -> tuple[yaml.Node | None, Problem | None]:
    """The node tree of `text` (None for an empty file), or the problem of its syntax: the
    line and column PyYAML stopped at, with what to look for there. Every configuration
    file is read through here, so each says a YAML mistake in the same words."""
    try:
        return yaml.compose(text, Loader=_Loader), None
    except yaml.reader.ReaderError as error:  # a character YAML refuses, by its position
        before = text[: error.position]
        line = before.count("\n") + 1
        column = error.position - (before.rfind("\n") + 1) + 1
        message = (
            f"invalid YAML at column {column}: the character U+{error.character:04X} is not "
            "allowed in YAML: remove it"
        )
        return None, Problem(file, line, "(file)", message)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        where = f" at column {mark.column + 1}" if mark is not None else ""
        message = f"invalid YAML{where}: {_syntax_reason(error, text, line)}"
        return None, Problem(file, line, "(file)", message)


def read_yaml(file: str, text: str) -> YamlSource:
    """Parse `text`; syntax errors and duplicate keys become problems, never exceptions."""
    root, syntax = compose_yaml(file, text)
    if syntax is not None:
        return YamlSource(file, None, None, [syntax])
    source = YamlSource(file, None, root)
    if root is None:
        return source
    expanded = _expanded_size(root, {}, set())
    if expanded > MAX_EXPANDED_NODES:
        source.problems.append(
            Problem(
                file,
                1,
                "(file)",
                f"aliases expand to more than {MAX_EXPANDED_NODES} values; write the values "
                "out instead of nesting aliases",
            )
        )
        return source
    paths: dict[int, tuple[Any, ...]] = {}
    _find_duplicate_keys(source, root, (), paths)
    loader = _Loader(text)
    source.data = loader.construct_document(root)
    for node, message in loader.failures:
        path = paths.get(id(node), ())
        source.problems.append(Problem(file, node.start_mark.line + 1, format_path(path), message))
    if loader.failures:
        source.problems.sort(key=lambda problem: problem.line)
    return source


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many values `node` holds with every alias written out (capped, so a cycle or an
    alias bomb costs one visit per node)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:  # a cycle: reported when the value is built
        return 1
    open_nodes.add(key)
    size = 1
    if isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    else:
        children = []
    for child in children:
        size += _expanded_size(child, sizes, open_nodes)
        if size > MAX_EXPANDED_NODES:
            break
    open_nodes.discard(key)
    sizes[key] = size = min(size, MAX_EXPANDED_NODES + 1)
    return size


def _find_duplicate_keys(
    source: YamlSource, node: yaml.Node, path: tuple[Any, ...], paths: dict[int, tuple[Any, ...]]
) -> None:
    """Report keys given twice, and note the field path of every node (where it is first
    reached: a node an alias repeats is walked once)."""
    if id(node) in paths:
        return
    paths[id(node)] = path
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}  # key: the line it is first given at
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key in seen:
                source.problems.append(
                    Problem(
                        source.file,
                        key_node.start_mark.line + 1,
                        format_path((*path, key)),
                        f"key given twice (first at line {seen[key]}); only one may stand",
                    )
                )
            if key is not None:
                seen.setdefault(key, key_node.start_mark.line + 1)
            paths.setdefault(id(key_node), (*path, key))
            _find_duplicate_keys(source, value_node, (*path, key), paths)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _find_duplicate_keys(source, item, (*path, index), paths)
