"""Each layer of pipesync imports only from the layers below it (docs/architecture.md, "Layers").

Every module under ``src/pipesync`` is parsed, not imported: an import anywhere in it counts,
at module level or inside a function (a deferred import is still a dependency, only a later
one), and so does one under ``if TYPE_CHECKING:`` — a type from a higher layer in a lower
layer's signature is the same upward dependency, merely invisible at run time.

A module's unit is its top-level name under ``pipesync`` (``pipesync.adapters.hubspot`` is in
``adapters``); the modules of one unit may import each other. Units of the same layer may not
import each other either: a layer is a set of peers, which is what rules out cycles between them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pipesync

# Low to high. A unit may import from units on lower lines only.
LAYERS: list[set[str]] = [
    {"errors"},
    {"model", "files", "yamlfile", "cldr", "plugins", "redaction", "logs"},
    {"parsing", "currency", "config", "mapping", "pipeline", "vocabulary", "workers", "defaults"},
    {"normalize", "adapters", "warehouse"},
    {"sync", "mapper", "consolidate"},
    {"metrics"},
    {"forecast"},
    {"report", "init", "pushback"},
    {"check", "migrate", "run"},
    {"cli"},
    {"__main__"},
]
LAYER_OF = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}

# Known upward imports, each to be removed by the change named beside it (none today).
ALLOWED: set[tuple[str, str]] = set()

SRC = Path(pipesync.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The pipesync modules one import statement names (``from pipesync import x`` names ``pipesync.x``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        package = module.split(".")[: len(module.split(".")) - node.level + is_package]
        base = ".".join(package + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base == "pipesync":
        return [f"pipesync.{a.name}" for a in node.names]
    return [base]


def _unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "pipesync" and len(parts) > 1 else None


def modules() -> dict[str, Path]:
    found = {_module_name(p): p for p in SRC.rglob("*.py")}
    return {m: p for m, p in found.items() if m != "pipesync"}


def upward_imports() -> list[str]:
    problems = []
    for module, path in sorted(modules().items()):
        unit = _unit(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            for target in _imported(node, module, path.name == "__init__.py"):
                target_unit = _unit(target)
                if target_unit is None or target_unit == unit or (module, target) in ALLOWED:
                    continue
                if target_unit not in LAYER_OF:
                    problems.append(f"{module} (line {node.lineno}): imports {target}, whose unit is in no layer")
                elif LAYER_OF[target_unit] >= LAYER_OF[unit]:  # type: ignore[index]
                    same = "the same layer" if LAYER_OF[target_unit] == LAYER_OF[unit] else "a higher layer"  # type: ignore[index]
                    problems.append(f"{module} (line {node.lineno}): imports {target}, from {same} ({target_unit})")
    return problems


def test_every_unit_is_in_a_layer() -> None:
    units = {_unit(m) for m in modules()}
    assert not units - set(LAYER_OF), "add these to LAYERS"
    assert not set(LAYER_OF) - units, "these are gone: remove them from LAYERS"


def test_no_module_imports_from_its_own_layer_or_above() -> None:
    problems = upward_imports()
    assert not problems, "imports against the layering:\n" + "\n".join(problems)


def test_the_allow_list_holds_only_imports_that_still_exist() -> None:
    found = {
        (module, target)
        for module, path in modules().items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        for target in _imported(node, module, path.name == "__init__.py")
    }
    assert ALLOWED <= found, f"fixed: remove from ALLOWED {sorted(ALLOWED - found)}"


def test_relative_and_package_imports_are_resolved() -> None:
    """The parser itself: the forms of import the check must see through."""

    def names(code: str, module: str, is_package: bool = False) -> list[str]:
        return [t for node in ast.walk(ast.parse(code)) for t in _imported(node, module, is_package)]

    assert names("from pipesync import sync", "pipesync.cli.app") == ["pipesync.sync"]
    assert names("from ..report import links", "pipesync.metrics.run") == ["pipesync.report"]
    assert names("from . import drift", "pipesync.mapper", is_package=True) == ["pipesync.mapper"]
    assert names("def f():\n    import pipesync.cli\n", "pipesync.model") == ["pipesync.cli"]
