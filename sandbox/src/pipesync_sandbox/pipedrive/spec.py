"""Pipedrive's own OpenAPI documents: where they are, loading them once, and what they say an endpoint costs.

The documents (``v1.yaml``, ``v2.yaml``, copied from developers.pipedrive.com)
live outside the package, in the team's shared specs folder; a deployment may
point ``PIPESYNC_PIPEDRIVE_SPECS`` at another copy. Without them the sandbox
still runs and charges the generic token costs from the vendor's rate-limit
documentation instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

SPECS_ENV = "PIPESYNC_PIPEDRIVE_SPECS"
SPEC_FILES = {"v1": "v1.yaml", "v2": "v2.yaml"}
_HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def default_spec_dir() -> Path:
    """``$PIPESYNC_PIPEDRIVE_SPECS``, else the shared specs folder next to this checkout."""
    configured = os.environ.get(SPECS_ENV)
    if configured:
        return Path(configured)
    repo = Path(__file__).resolve().parents[4]  # src/pipesync/sandbox/pipedrive/spec.py → checkout root
    return repo.parent / "shared" / "specs" / "pipedrive"


@lru_cache(maxsize=4)
def load_spec(version: str, spec_dir: Path | None = None) -> dict[str, Any]:
    """The parsed OpenAPI document for ``v1`` or ``v2``.

    Parsing the YAML takes seconds, so the result is kept in memory for the
    process and as JSON in the user's cache directory (keyed by the file's
    path, size and mtime), which loads in a fraction of that.
    Raises FileNotFoundError when the document is not there.
    """
    path = (spec_dir or default_spec_dir()) / SPEC_FILES[version]
    cached = _cache_file(path)
    try:
        return json.loads(cached.read_bytes())
    except (OSError, ValueError):
        pass
    with path.open("rb") as stream:
        document = _parse_yaml(stream)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        # YAML dates (in examples) become ISO strings, as JSON Schema sees them anyway.
        partial.write_text(json.dumps(document, default=str))
        os.replace(partial, cached)
    except OSError:
        pass  # a read-only home only costs the next process the parse
    return document


def _cache_file(path: Path) -> Path:
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "pipesync" / f"pipedrive-{path.stem}-{key}.json"


def _parse_yaml(stream: Any) -> dict[str, Any]:
    # The documents are 1-2 MB: libyaml parses them in about a second, pure-Python
    # parsers take several, so prefer it when PyYAML was built with it.
    try:
        import yaml

        loader = yaml.CSafeLoader
    except (ImportError, AttributeError):
        from ruamel.yaml import YAML

        return YAML(typ="safe").load(stream)
    return yaml.load(stream, Loader=loader)  # noqa: S506 - CSafeLoader is the safe loader


@lru_cache(maxsize=4)
def token_costs(spec_dir: Path | None = None) -> dict[tuple[str, str, str], int]:
    """``(version, method, spec path) -> x-token-cost`` for every operation both documents declare.

    Empty when the documents are not available (the caller falls back to generic costs).
    """
    costs: dict[tuple[str, str, str], int] = {}
    for version in SPEC_FILES:
        try:
            spec = load_spec(version, spec_dir)
        except FileNotFoundError:
            continue
        for path, operations in spec.get("paths", {}).items():
            for method in _HTTP_METHODS:
                cost = (operations.get(method) or {}).get("x-token-cost")
                if isinstance(cost, int):
                    costs[(version, method, path)] = cost
    return costs
