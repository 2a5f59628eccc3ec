"""Rules files: YAML read with line numbers, validated by a pydantic model.

Every rules file (config, shared pipeline, mappings, match rules, cleanups) is
loaded here so that every problem in a file is reported at once, each with the
file and the line it stands on.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent

from pipesync.errors import ConfigError, FileErrors

M = TypeVar("M", bound=BaseModel)


# A rules file is written by hand: these bounds are far above any real one and far below
# what a hostile file (an alias bomb, 5,000 nested lists, /dev/zero) needs to hurt.
MAX_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 500_000  # values once every alias is expanded, as validation will see them


def read_yaml(path: str | Path) -> Any:
    """The YAML document at ``path``, as ruamel's round-trip objects (they keep line numbers)."""
    path = Path(path)
    text = _read_text(path)
    yaml = YAML(typ="rt")
    try:
        _check_shape(path, yaml, text)
        return yaml.load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}" if mark else "?"
        raise ConfigError(f"{path}: {where}: YAML syntax: {e.problem}") from None


def _read_text(path: Path) -> str:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path}: not a regular file")
        if info.st_size > MAX_BYTES:
            raise ConfigError(f"{path}: {info.st_size:,} bytes is too large for a rules file "
                              f"(at most {MAX_BYTES // (1024 * 1024)} MB)")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{str(path)[:200]}: cannot read: {e.strerror}") from None


def _check_shape(path: Path, yaml: YAML, text: str) -> None:
    """Refuses deep nesting and alias bombs from the event stream, before any object is built.

    An alias costs what its anchor holds, so the count is of the document as expanded.
    """
    sizes: dict[str, int] = {}
    open_collections: list[tuple[str | None, int]] = []  # (anchor, nodes so far) per open collection
    total = 0
    for event in yaml.parse(text):
        if isinstance(event, CollectionStartEvent):
            if len(open_collections) >= MAX_DEPTH:
                raise ConfigError(f"{path}: line {event.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
            open_collections.append((event.anchor, 1))
            continue
        if isinstance(event, CollectionEndEvent):
            anchor, nodes = open_collections.pop()
            if anchor:
                sizes[anchor] = nodes
            read = 0  # its values were counted as they were read; its size only goes to its parent
        elif isinstance(event, AliasEvent):
            nodes = read = sizes.get(event.anchor, 1)
        elif isinstance(event, ScalarEvent):
            nodes = read = 1
            if event.anchor:
                sizes[event.anchor] = 1
        else:
            continue
        if open_collections:
            anchor, so_far = open_collections[-1]
            open_collections[-1] = (anchor, so_far + nodes)
        total += read
        if total > MAX_NODES:
            raise ConfigError(f"{path}: line {event.start_mark.line + 1}: more than {MAX_NODES:,} values once its "
                              "aliases (*name) are expanded; write the values out instead")


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
