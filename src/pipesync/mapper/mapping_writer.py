"""Writes a proposal to ``mappings/<source>.yaml``: commented, editable, and kind to edits.

The file is round-tripped with ruamel.yaml: on a re-run every stage that
already has a shared stage in the file is left exactly as the user wrote it
(value and comments), as are ``fields``, ``parse`` and anything else in it.
Only undecided stages (null) are filled in, stages new to the file are
appended, and ``parse.date_order`` is added where the source's dates prove it
and the file sets none. Stages the source no longer has are kept: deals may
still sit in them (``pipesync map --check`` reports them). Lost reasons and lead
sources follow the same rules under ``lost_reasons:`` and ``lead_sources:``.
"""

from __future__ import annotations

import io
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from pipesync.files import write_atomically
from pipesync.mapper.date_order import advise_date_order
from pipesync.mapper.propose import PipelineProposal, Proposal, StageProposal
from pipesync.mapper.values import ValueProposal, value_comment
from pipesync.mapper.writes import Landing
from pipesync.mapping import ANY, fold
from pipesync.vocabulary import VALUE_FIELDS
from pipesync.yamlfile import read_yaml

HEADER = """\
Stage mapping for source "{source}", written by `pipesync map {source}`.
Each source stage maps to a shared stage key (see mappings/pipeline.yaml), or to
null while undecided: deals in an undecided stage are quarantined, never guessed.
Edit freely. Re-running `pipesync map` keeps every decision written here and only
fills in undecided or new stages. The comment after a stage says why it was
proposed (confidence 0..1 and the evidence). Lost reasons and lead sources map
onto the shared vocabularies the same way; an undecided one (null) is kept as
written. Format: docs/mapping-files.md"""


def write_mapping(path: str | Path, proposal: Proposal) -> Path:
    """Writes (or updates) the mapping file at ``path`` from ``proposal``'s accepted stages."""
    path = Path(path)
    doc = read_yaml(path) if path.exists() else None
    if not isinstance(doc, CommentedMap):
        doc = CommentedMap()
        doc.yaml_set_start_comment(HEADER.format(source=proposal.source))
    if doc.get("source") is None:
        doc.insert(0, "source", proposal.source)
    _write_date_order(doc, proposal)
    pipelines = doc.get("pipelines")
    if not isinstance(pipelines, CommentedSeq):
        pipelines = CommentedSeq()
        doc["pipelines"] = pipelines
    for pp in proposal.pipelines:
        node = _find_pipeline(pipelines, pp)
        for sp in pp.stages:
            if sp.origin == "kept":
                continue  # decided in the file already, wherever it stands there
            if node is None:
                node = _new_pipeline(pp)
                pipelines.append(node)
            _update_stage(node, sp)
    for vp in proposal.values:
        if vp.origin != "kept":
            _update_value(doc, vp)
    _save(path, doc)
    return path


def write_landings(path: str | Path, landings: list[Landing]) -> int:
    """Writes each proposed (``chosen``) landing into its pipeline's ``writes:`` in the mapping file at
    ``path``; an entry the file has is never touched. Returns how many entries were written."""
    path = Path(path)
    doc = read_yaml(path)
    written = 0
    for landing in (x for x in landings if x.origin == "chosen"):
        node = next((p for p in doc.get("pipelines") or [] if isinstance(p, CommentedMap)
                     and str(p.get("id", ANY)) == landing.pipeline), None)
        if node is None:
            continue
        writes = node.get("writes")
        if not isinstance(writes, CommentedMap):
            writes = node["writes"] = CommentedMap()
        if landing.shared in writes:
            continue
        writes[landing.shared] = landing.stage
        writes.yaml_add_eol_comment(f"{landing.stage_label}; chosen over {landing.others()} (pipesync map --for-writes)",
                                    landing.shared)
        written += 1
    if written:
        _save(path, doc)
    return written


def _update_value(doc: CommentedMap, vp: ValueProposal) -> None:
    section = VALUE_FIELDS[vp.field]
    values = doc.get(section)
    if not isinstance(values, CommentedMap):
        values = CommentedMap()
        doc[section] = values
    written = next((k for k in values if fold(str(k)) == fold(vp.value)), None)
    if written is not None and values[written] is not None:
        return  # the file's decision is the user's: never touched
    name = vp.value if written is None else written
    values[name] = vp.key if vp.accepted else None
    values.ca.items.pop(name, None)
    values.yaml_add_eol_comment(value_comment(vp), name)


def _write_date_order(doc: CommentedMap, proposal: Proposal) -> None:
    """``parse.date_order`` with its evidence, when the source's dates prove one and the file sets none."""
    parse = doc.get("parse")
    configured = parse.get("date_order") if isinstance(parse, CommentedMap) else None
    advice = advise_date_order(proposal.dates, None if configured is None else str(configured))
    if advice.write is None:
        return
    if not isinstance(parse, CommentedMap):
        parse = CommentedMap()
        doc.insert(list(doc).index("source") + 1, "parse", parse)
    parse["date_order"] = advice.write
    parse.yaml_add_eol_comment(f"{proposal.dates.proof[advice.write]} (pipesync map)", "date_order")  # type: ignore[union-attr]


def _find_pipeline(pipelines: CommentedSeq, pp: PipelineProposal) -> CommentedMap | None:
    for node in pipelines:
        if not isinstance(node, CommentedMap):
            continue
        node_id = str(node.get("id", ANY))
        label = node.get("label")
        if node_id == pp.id or (label is not None and fold(str(label)) == fold(pp.label)):
            return node
    return None


def _new_pipeline(pp: PipelineProposal) -> CommentedMap:
    node = CommentedMap()
    node["id"] = pp.id
    if pp.label != pp.id:
        node["label"] = pp.label
    node["stages"] = CommentedSeq()
    return node


def _update_stage(pipeline: CommentedMap, sp: StageProposal) -> None:
    stages = pipeline.get("stages")
    if not isinstance(stages, CommentedSeq):
        stages = CommentedSeq()
        pipeline["stages"] = stages
    node = _find_stage(stages, sp)
    if node is None:
        node = CommentedMap()
        if sp.id != sp.label:
            node["id"] = sp.id
        node["label"] = sp.label
        node["stage"] = None
        stages.append(node)
    elif node.get("stage") is not None:
        return  # the file's decision is the user's: never touched
    node["stage"] = sp.stage if sp.accepted else None
    node.ca.items.pop("stage", None)
    node.yaml_add_eol_comment(stage_comment(sp), "stage")


def _find_stage(stages: CommentedSeq, sp: StageProposal) -> CommentedMap | None:
    for node in stages:
        if not isinstance(node, CommentedMap):
            continue
        if node.get("id") is not None and str(node["id"]) == sp.id:
            return node
    for node in stages:
        if isinstance(node, CommentedMap) and node.get("label") is not None and fold(str(node["label"])) == fold(sp.label):
            return node
    return None


def stage_comment(sp: StageProposal) -> str:
    """The reason written beside a stage: why it maps where it does, or the guesses if undecided."""
    if sp.accepted and sp.stage is not None:
        return f"{sp.confidence:.2f}: {'; '.join(sp.reasons)}"
    candidates = sp.candidates()
    if not candidates:
        return f"undecided: {'; '.join(sp.reasons) or 'no evidence'}"
    shown = ", ".join(f"{g.stage} {g.confidence:.2f} ({'; '.join(g.reasons)})" for g in candidates[:3])
    return f"undecided; best guesses: {shown}"


def _save(path: Path, doc: CommentedMap) -> None:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # one stage, one line: long reasons stay on their stage's line
    yaml.allow_unicode = True
    # An undecided stage reads `stage: null`, not a bare `stage:` a user may take for a typo.
    yaml.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    buffer = io.StringIO()
    yaml.dump(doc, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, buffer.getvalue())
