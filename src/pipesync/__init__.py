"""pipesync: CRM sync middleware for revenue operations.

The public Python surface mirrors the command line: every command is a
function in the module named after it (``pipesync.sync.run_sync`` …).
"""

from importlib.metadata import PackageNotFoundError, version

try:  # one version source: the installed package's metadata (pyproject.toml)
    __version__ = version("pipesync")
except PackageNotFoundError:  # a source tree run without installing
    __version__ = "0+unknown"
