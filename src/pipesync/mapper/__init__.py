"""Stage mapping: propose how a source's stages map onto the shared pipeline, write it, watch it drift.

``pipesync map`` is a thin layer over these; each is usable from Python as is.

The names below load their submodule on first use (PEP 562): a command that needs
one of them does not load the lexicon, the proposal engine and their dependencies.
Drift (a mapping file against the live source) is the mapping model's own check, in
:mod:`pipesync.mapping`: ``pipesync sync`` runs it without this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipesync.mapper.context import MapContext, map_context
    from pipesync.mapper.lexicon import Lexicon, load_lexicon, normalize
    from pipesync.mapper.mapping_writer import write_landings, write_mapping
    from pipesync.mapper.propose import (
        Guess,
        PipelineProposal,
        Proposal,
        StageProposal,
        accept_confident,
        propose_mapping,
    )
    from pipesync.mapper.writes import Landing, ReverseMapping, reverse_mapping

# Confidence at or above which a proposal is accepted. It lives here, not in propose, so that
# `pipesync map --threshold`'s default does not load the proposal engine with every command.
DEFAULT_THRESHOLD = 0.8

_SUBMODULE_OF = {
    "MapContext": "context", "map_context": "context",
    "Lexicon": "lexicon", "load_lexicon": "lexicon", "normalize": "lexicon",
    "write_mapping": "mapping_writer", "write_landings": "mapping_writer",
    "Landing": "writes", "ReverseMapping": "writes", "reverse_mapping": "writes",
    "Guess": "propose", "PipelineProposal": "propose", "Proposal": "propose",
    "StageProposal": "propose", "accept_confident": "propose", "propose_mapping": "propose",
}
# Importing the package used to load these, so ``pipesync.mapper.lexicon`` worked as an attribute without an import.
_SUBMODULES = frozenset(_SUBMODULE_OF.values())

__all__ = [
    "DEFAULT_THRESHOLD", "Guess", "Landing", "Lexicon", "MapContext", "PipelineProposal", "Proposal", "ReverseMapping",
    "StageProposal", "accept_confident", "load_lexicon", "map_context", "normalize", "propose_mapping",
    "reverse_mapping", "write_landings", "write_mapping",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULE_OF:
        value = getattr(importlib.import_module(f"{__name__}.{_SUBMODULE_OF[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
