"""Rules files: YAML read with line numbers, validated by a pydantic model.

Every rules file (config, shared pipeline, mappings, match rules, cleanups) is
loaded here so that every problem in a file is reported at once, each with the
file and the line it stands on.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from pipesync.errors import ConfigError, FileErrors

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: str | Path) -> Any:
    """The YAML document at ``path``, as ruamel's round-trip objects (they keep line numbers)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}" if mark else "?"
        raise ConfigError(f"{path}: {where}: YAML syntax: {e.problem}") from None


def line_of(doc: Any, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the node at pydantic location ``loc`` (the deepest one that exists)."""
    node, line = doc, None
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            ln = node.lc.key(part)[0]
            line, node = ln + 1, node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line, node = node.lc.item(part)[0] + 1, node[part]
        else:
            break
    if line is None and isinstance(doc, (CommentedMap, CommentedSeq)):
        line = doc.lc.line + 1
    return line


def describe_errors(doc: Any, error: ValidationError,
                    label: Callable[[tuple[int | str, ...]], str | None] = lambda loc: None) -> list[str]:
    """One line per problem: ``line N: field: message``; ``label`` may name a location better than its path."""
    problems = []
    for err in error.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        field = label(loc) or ".".join(str(p) for p in loc) or "(top level)"
        line = line_of(doc, loc)
        where = f"line {line}: " if line else ""
        problems.append(f"{where}{field}: {err['msg']}")
    return problems


def plain(node: Any) -> Any:
    """ruamel's round-trip objects as plain dicts and lists."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def load_model(path: str | Path, model: type[M], context: dict[str, Any] | None = None) -> M:
    """``path`` parsed and validated as ``model``; raises FileErrors listing every problem."""
    doc = read_yaml(path)
    if doc is None:
        doc = CommentedMap()
    try:
        return model.model_validate(plain(doc), context=context)
    except ValidationError as e:
        raise FileErrors(str(path), describe_errors(doc, e)) from None
