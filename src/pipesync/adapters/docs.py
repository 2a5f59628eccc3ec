"""Each adapter's options as documentation, written from its options model.

``pipesync init`` comments its sources with :func:`option_docs`, and docs/adapters.md
holds a table per adapter between ``<!-- options: TYPE -->`` and ``<!-- end options -->``.
Regenerate those tables with::

    python -m pipesync.adapters.docs docs/adapters.md
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from pipesync.plugins import AdapterOptions, registered

_PLAIN = re.compile(r"[A-Za-z_./][A-Za-z0-9_ ./:@+-]*")
_SECTION = re.compile(r"(<!-- options: (?P<type>[\w-]+) -->\n).*?(<!-- end options -->)", re.S)


@dataclass(frozen=True)
class OptionDoc:
    name: str
    description: str
    required: bool
    default: Any  # None when there is none
    example: Any  # the first of the field's examples, else None


def option_docs(model: type[AdapterOptions]) -> list[OptionDoc]:
    """The model's options: its own first, then those it shares with other adapters."""
    docs = []
    for name, info in sorted(model.model_fields.items(), key=lambda item: -_depth(model, item[0])):
        default = None if info.default is PydanticUndefined else info.default
        example = info.examples[0] if info.examples else None
        docs.append(OptionDoc(name, info.description or "", info.is_required(), default, example))
    return docs


def _depth(model: type[AdapterOptions], name: str) -> int:
    """How far down the class tree the option was first declared (a redeclared default does not count)."""
    first = [c for c in model.__mro__ if name in vars(c).get("__annotations__", {})][-1]
    return len(first.__mro__)


def yaml_value(value: Any) -> str:
    """``value`` as one line of YAML (flow style)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_value(k)}: {yaml_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    plain = (_PLAIN.fullmatch(text) and ": " not in text and not text.endswith((" ", ":"))
             and text.lower() not in ("true", "false", "null", "yes", "no", "on", "off"))
    return text if plain else json.dumps(text, ensure_ascii=False)


def options_table(model: type[AdapterOptions]) -> str:
    rows = ["| option | default | meaning |", "| --- | --- | --- |"]
    for o in option_docs(model):
        default = "(required)" if o.required else "—" if o.default is None else f"`{yaml_value(o.default)}`"
        meaning = o.description.replace("|", r"\|")
        rows.append(f"| `{o.name}` | {default} | {meaning} |")
    secrets = ", ".join(f"`{s}`" for s in sorted(model.secret_names()))
    if secrets:
        rows += ["", f"Secrets (under `secrets:`, each `{{env: VAR}}` or `{{file: path}}`): {secrets}."]
    return "\n".join(rows) + "\n"


def updated(doc: str) -> str:
    """``doc`` with each marked options table written anew from the adapter's model."""
    plugins = registered()
    return _SECTION.sub(lambda m: m.group(1) + options_table(plugins[m.group("type")].options) + m.group(3), doc)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m pipesync.adapters.docs docs/adapters.md", file=sys.stderr)
        return 2
    path = Path(argv[0])
    path.write_text(updated(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
