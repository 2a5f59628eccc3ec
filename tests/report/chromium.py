"""Real headless Chromium for the report tests: console messages, the DOM after scripts ran, a screenshot."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0",
    # Finish painting before the screenshot is taken (else, on a busy machine, tiles can be missing).
    "--run-all-compositor-stages-before-draw",
]
# Chromium logs every console message of the page (errors, uncaught exceptions, CSP violations) like this.
CONSOLE_LINE = re.compile(r":CONSOLE[^\]]*\] (.*)$", re.MULTILINE)


@dataclass
class PageRun:
    console: list[str]  # every console message the page produced
    dom: str  # the document after its scripts ran


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        # The report is only tested for real in a real browser: no browser is a failure, not a skip.
        pytest.fail(f"headless Chromium is required ({CHROMIUM} is missing): apt-get install chromium, as .ci/run does")


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def load(page: Path, work: Path) -> PageRun:
    """Opens ``page`` and returns its console messages and final DOM."""
    require_chromium()
    proc = _run(["--dump-dom", page.resolve().as_uri()], work / "profile-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return PageRun(console=CONSOLE_LINE.findall(proc.stderr), dom=proc.stdout)


def screenshot(page: Path, out: Path, work: Path, width: int = 1440, height: int = 900) -> list[str]:
    """Writes a screenshot of ``page`` at ``width``×``height``; returns the console messages of that load."""
    require_chromium()
    proc = _run([f"--screenshot={out}", f"--window-size={width},{height}", page.resolve().as_uri()], work / "profile-shot")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return CONSOLE_LINE.findall(proc.stderr)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


ARTIFACTS = Path("/tmp/pipesync-report-test")


def screenshot_kept(page: Path, name: str, work: Path) -> list[str]:
    """A 1440×900 screenshot of ``page``, checked for its size and kept as ARTIFACTS/``name`` for a person
    to look at; returns the console messages of that load."""
    shot = work / name
    console = screenshot(page, shot, work)
    assert png_size(shot) == (1440, 900)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / name)
    return console
