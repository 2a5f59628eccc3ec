"""Interactive review: accept all, change one, skip one, quit."""

from __future__ import annotations

import io

from rich.console import Console

from pipesync.mapper.propose import propose_mapping
from pipesync.mapper.review import review
from pipesync.pipeline import load_pipeline

from tests.mapper.helpers import labels_only

PIPELINE = load_pipeline()


def reviewed(answers: str, *labels: str):
    proposal = propose_mapping(labels_only(*labels), PIPELINE)
    out = io.StringIO()
    write = review(proposal, PIPELINE, Console(file=out, width=160), stream=io.StringIO(answers))
    return write, {s.label: s for _, s in proposal.stages()}, out.getvalue()


def test_accept_all_keeps_the_proposal_and_shows_what_is_undecided():
    write, stages, shown = reviewed("a\n", "Demo", "Frobnicate")
    assert write
    assert stages["Demo"].accepted and not stages["Frobnicate"].accepted
    assert "1 stage(s) undecided" in shown


def test_change_one_by_number_or_key():
    write, stages, _ = reviewed("c\n2\n4\nc\n1\nqualification\na\n", "Demo", "Frobnicate")
    assert write
    assert (stages["Frobnicate"].stage, stages["Frobnicate"].accepted) == ("proposal", True)
    assert stages["Frobnicate"].reasons == ["chosen in review"]
    assert stages["Demo"].stage == "qualification"
    # the engine's proposal is kept as a guess beside the reviewer's choice
    assert stages["Demo"].guesses[0].stage == "discovery"


def test_skip_one_leaves_it_undecided():
    _, stages, _ = reviewed("s\n1\na\n", "Demo")
    assert (stages["Demo"].stage, stages["Demo"].accepted) == (None, False)


def test_quit_writes_nothing():
    write, _, _ = reviewed("q\n", "Demo")
    assert not write
