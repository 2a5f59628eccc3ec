"""pipesync and pipesync-sandbox are two parts: the product never needs the sandboxes, and the
sandboxes check the adapters with code of their own. The sandbox's commands join the product's
command line through the ``pipesync.commands`` entry points, and are missed politely when absent.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ROOT / "src" / "pipesync"
SANDBOX = ROOT / "sandbox" / "src" / "pipesync_sandbox"


def imported_modules(package: Path) -> dict[str, set[str]]:
    """Module file (relative) → every module it imports, absolute (``from . import x`` resolved is not used here)."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        found[str(path.relative_to(ROOT))] = names
    return found


def offenders(package: Path, forbidden: str) -> dict[str, list[str]]:
    return {module: sorted(n for n in names if n == forbidden or n.startswith(forbidden + "."))
            for module, names in imported_modules(package).items()
            if any(n == forbidden or n.startswith(forbidden + ".") for n in names)}


def test_the_product_never_imports_the_sandboxes():
    assert offenders(PRODUCT, "pipesync_sandbox") == {}


def test_no_sandbox_module_imports_the_adapters_it_checks():
    assert offenders(SANDBOX, "pipesync.adapters") == {}


def test_the_emulators_load_no_adapter_at_run_time():
    code = ("import sys, pipesync_sandbox.sandboxes, pipesync_sandbox.generator, pipesync_sandbox.salesforce, "
            "pipesync_sandbox.hubspot, pipesync_sandbox.pipedrive, pipesync_sandbox.sources\n"
            "print(sorted(m for m in sys.modules if m.startswith('pipesync.adapters')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_products_dependencies_carry_no_web_server():
    product = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    sandbox = tomllib.loads((ROOT / "sandbox" / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for name in ("starlette", "uvicorn", "uvloop", "trustme"):
        assert not any(d.startswith(name) for d in product), name
    assert {"pipesync", "starlette>=0.37", "uvicorn[standard]>=0.29", "trustme>=1.1"} <= set(sandbox["dependencies"])
    assert sandbox["entry-points"]["pipesync.commands"] == {"sandbox": "pipesync_sandbox.cli:register"}


def run_cli(*args: str, plugins: str = "installed") -> subprocess.CompletedProcess[str]:
    """``pipesync ARGS`` in a fresh interpreter; ``plugins="none"`` finds no ``pipesync.commands`` entry point,
    as when pipesync-sandbox is not installed."""
    patch = "import importlib.metadata as m; m.entry_points = lambda **_: []\n" if plugins == "none" else ""
    code = f"{patch}import sys; sys.argv = ['pipesync', *{list(args)!r}]\nfrom pipesync.cli import app; app()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_the_sandbox_part_adds_demo_and_sandbox_to_the_command_line():
    listed = run_cli("--help")
    assert listed.returncode == 0 and "demo" in listed.stdout and "sandbox" in listed.stdout
    assert "not installed" not in listed.stdout
    sandbox = run_cli("sandbox", "--help")
    assert sandbox.returncode == 0 and "up" in sandbox.stdout and "seed" in sandbox.stdout


@pytest.mark.parametrize("args", [["demo"], ["demo", "--dir", "x", "--size", "100"], ["sandbox", "up", "--size", "10"],
                                  ["sandbox"]])
def test_without_the_sandbox_part_demo_and_sandbox_say_how_to_install_it(args, tmp_path):
    result = run_cli(*args, plugins="none")
    assert result.returncode == 2, result.stderr
    assert "pipesync-sandbox" in result.stderr and "pip install -e ./sandbox" in result.stderr
    assert not (tmp_path / "x").exists()


def test_without_the_sandbox_part_the_help_still_lists_the_commands_as_not_installed():
    listed = run_cli("--help", plugins="none")
    assert listed.returncode == 0 and "(not installed: pipesync-sandbox)" in " ".join(listed.stdout.replace("│", " ").split())


def test_an_entry_point_registers_its_commands_on_the_app():
    code = (
        "import importlib.metadata as m, typer\n"
        "class EntryPoint:\n"
        "    def load(self):\n"
        "        def register(app: typer.Typer) -> None:\n"
        "            app.command('hello')(lambda: print('hello from a plugin'))\n"
        "        return register\n"
        "m.entry_points = lambda group: [EntryPoint()] if group == 'pipesync.commands' else []\n"
        "import sys; sys.argv = ['pipesync', 'hello']\n"
        "from pipesync.cli import app; app()"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == "hello from a plugin\n", result.stderr
