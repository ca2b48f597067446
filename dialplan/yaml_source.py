"""YAML read with its line numbers, so every problem can point an editor at its line.

PyYAML's composed node tree keeps a start mark per node; the plain Python data is built
from that same tree. Duplicate keys, which PyYAML would silently collapse, are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from dialplan.errors import Problem


class _Loader(yaml.SafeLoader):
    """SafeLoader (no Python object tags) that keeps the composed tree."""


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


def read_yaml(file: str, text: str) -> YamlSource:
    """Parse `text`; syntax errors and duplicate keys become problems, never exceptions."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(error, "problem", None) or str(error)
        return YamlSource(
            file, None, None, [Problem(file, line, "(file)", f"invalid YAML: {reason}")]
        )
    source = YamlSource(file, None, root)
    if root is None:
        return source
    _find_duplicate_keys(source, root, ())
    source.data = _Loader(text).construct_document(root)
    return source


def _find_duplicate_keys(source: YamlSource, node: yaml.Node, path: tuple[Any, ...]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key in seen:
                source.problems.append(
                    Problem(
                        source.file,
                        key_node.start_mark.line + 1,
                        format_path((*path, key)),
                        "key given twice; only one may stand",
                    )
                )
            if key is not None:
                seen.add(key)
            _find_duplicate_keys(source, value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _find_duplicate_keys(source, item, (*path, index))
