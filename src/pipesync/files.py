"""Writing files so that a crash never leaves half of one (mappings, reports, token stores), and
refusing to read what is not a file."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from pipesync.errors import ConfigError

_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def require_regular_file(path: Path, what: str) -> None:
    """Refuses ``path`` if it exists and is not a regular file: reading a device such as /dev/zero
    never ends (until memory does), a FIFO without a writer never starts, a directory fails late.

    ``what`` names who reads it ("source 'crm': options.path"). A path that does not exist, or
    cannot be looked at, is left to the read, which says so.
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a file")
        raise ConfigError(f"{what}: {str(path)[:300]} is {kind}, not a regular file: point it at an export file")


def write_atomically(path: str | Path, text: str, *, mode: int | None = None, durable: bool = False) -> Path:
    """Writes ``text`` beside ``path`` and renames it into place.

    The file gets the permissions any program's new file gets (0o666 less the umask);
    ``mode`` sets them instead, before any byte is written (0o600 for secrets).
    ``durable`` fsyncs first, for files whose loss cannot be recovered (a rotated token).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # Created by hand, not with mkstemp, whose 0o600 would make every report and mapping private.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
    try:
        if mode is not None:
            os.fchmod(fd, mode)  # exactly this, whatever the umask
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
