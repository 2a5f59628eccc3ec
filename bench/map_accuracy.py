"""Accuracy of `pipesync map`'s proposals on a labelled stage list (default tests/mapper/stage_labels.yaml).

tests/mapper/stage_labels.yaml is the tuning list: a miss there is fixed by adding
vocabulary a real team would use, never by copying the label in.
tests/mapper/stage_labels_holdout.yaml and stage_labels_heldout_2.yaml were never
tuned on: they give the honest figures. stage_labels_heldout_3.yaml was written
blind (its author never read the lexicon): the blind figure, quoted in its header.

    python bench/map_accuracy.py [--threshold 0.8] [--labels PATH] [--misses]

Prints: accuracy (proposed stage = expected), how many proposals clear the
threshold (written without review) and how many of those are wrong (the
errors that would pass silently), what `--yes` writes (right, wrong, left
undecided), accuracy per language, and the time per proposal
(median of 5 runs; noisy on a shared machine).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from pipesync.mapper.evaluation import evaluate, load_label_set
from pipesync.mapper.lexicon import load_lexicon
from pipesync.pipeline import load_pipeline

LABELS = Path(__file__).resolve().parent.parent / "tests" / "mapper" / "stage_labels.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--misses", action="store_true", help="list every miss with its reasons")
    args = parser.parse_args()

    pipeline = load_pipeline()
    lexicon = load_lexicon(pipeline)
    labels = load_label_set(args.labels)
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        result = evaluate(labels, pipeline, threshold=args.threshold, lexicon=lexicon)
        timings.append(time.perf_counter() - start)

    print(f"stage labels: {result.total} in {len(labels.setups)} set-ups, {len(result.by_language)} languages")
    print(f"accuracy: {result.accuracy:.1%} ({result.correct}/{result.total} proposed stages as expected)")
    print(
        f"accepted at threshold {args.threshold:g}: {result.accepted}/{result.total} "
        f"({result.accepted / result.total:.1%}); wrong among them: {result.accepted_wrong}"
    )
    print(
        f"as `pipesync map --yes` writes them: right {result.right} ({result.right / result.total:.1%}), "
        f"wrong {result.accepted_wrong} ({result.accepted_wrong / result.total:.1%}), "
        f"undecided {result.undecided} ({result.undecided / result.total:.1%})"
    )
    for lang, (right, count) in sorted(result.by_language.items()):
        print(f"  {lang:8} {right}/{count} ({right / count:.0%})")
    per_stage = statistics.median(timings) / result.total
    print(f"time: median {statistics.median(timings) * 1000:.0f} ms per run, {per_stage * 1e6:.0f} µs per stage")
    shown = result.misses if args.misses else result.misses[:10]
    for m in shown:
        print(f"  miss: [{m.system}] {m.pipeline} / {m.label!r}: expected {m.expected}, proposed {m.proposed} "
              f"({m.confidence:.2f}: {'; '.join(m.reasons)})")
    if len(shown) < len(result.misses):
        print(f"  … {len(result.misses) - len(shown)} more (--misses)")


if __name__ == "__main__":
    main()
