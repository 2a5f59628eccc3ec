"""Writing files so that a crash never leaves half of one (mappings, reports, token stores)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: str | Path, text: str, *, mode: int | None = None, durable: bool = False) -> Path:
    """Writes ``text`` beside ``path`` and renames it into place.

    ``mode`` sets the permissions before any byte is written (0o600 for secrets);
    ``durable`` fsyncs first, for files whose loss cannot be recovered (a rotated token).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
