"""The vendors' own OpenAPI documents, for the conformance tests only: the sandboxes never read them.

They are not in the repository. ``PIPESYNC_VENDOR_SPECS`` names a folder holding
``pipedrive/v1.yaml`` and ``pipedrive/v2.yaml`` (Pipedrive's published
``openapi.yaml`` and ``openapi-v2.yaml``); ``.ci/run`` sets it when the team's
shared specs folder is there. Without it the tests that need them skip, saying so.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

SPECS_ENV = "PIPESYNC_VENDOR_SPECS"
PIPEDRIVE_FILES = {"v1": "pipedrive/v1.yaml", "v2": "pipedrive/v2.yaml"}


def _pipedrive_missing() -> str | None:
    """Why the Pipedrive documents cannot be read, or None when they can."""
    folder = os.environ.get(SPECS_ENV)
    if not folder:
        return (f"Pipedrive's OpenAPI documents are not configured: set {SPECS_ENV} to a folder holding "
                f"{' and '.join(PIPEDRIVE_FILES.values())} (.ci/run does when ../shared/specs exists)")
    missing = [name for name in PIPEDRIVE_FILES.values() if not (Path(folder) / name).is_file()]
    if missing:
        return f"{SPECS_ENV}={folder} lacks {', '.join(missing)}"
    return None


requires_pipedrive_specs = pytest.mark.skipif(_pipedrive_missing() is not None, reason=_pipedrive_missing() or "")


@cache
def pipedrive_spec(version: str) -> dict[str, Any]:
    """Pipedrive's parsed document for ``v1`` or ``v2``.

    Parsing the YAML takes seconds, so it is also kept as JSON in the user's cache
    directory (keyed by the file's path, size and mtime), which loads in a fraction of that.
    """
    path = Path(os.environ[SPECS_ENV]) / PIPEDRIVE_FILES[version]
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
