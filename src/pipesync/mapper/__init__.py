"""Stage mapping: propose how a source's stages map onto the shared pipeline, write it, watch it drift.

``pipesync map`` is a thin layer over these; each is usable from Python as is.
"""

from pipesync.mapper.context import MapContext, map_context
from pipesync.mapper.drift import DriftItem, DriftReport, check_mapping, unmapped_live_stages
from pipesync.mapper.lexicon import Lexicon, load_lexicon, normalize
from pipesync.mapper.mapping_writer import write_mapping
from pipesync.mapper.propose import (
    DEFAULT_THRESHOLD,
    Guess,
    PipelineProposal,
    Proposal,
    StageProposal,
    accept_confident,
    propose_mapping,
)

__all__ = [
    "DEFAULT_THRESHOLD", "DriftItem", "DriftReport", "Guess", "Lexicon", "MapContext", "PipelineProposal",
    "Proposal", "StageProposal", "accept_confident", "check_mapping", "load_lexicon", "map_context",
    "normalize", "propose_mapping", "unmapped_live_stages", "write_mapping",
]
