"""pipesync: CRM sync middleware for revenue operations.

The public Python surface mirrors the command line: every command is a
function in the module named after it (``pipesync.sync.run_sync`` …).
"""

__version__ = "0.1.0"
