"""The grounding checker measured on real descriptions, labelled by hand.

``tests/grounding_labels.json`` holds descriptions that SmolLM2-135M-Instruct wrote for the
standard library's ``json`` and ``sqlite3`` (``benchmarks/grounding.py``), each with what it was
checked against (the node's source, its path and its children's paths) and ``hallucinated``:
the identifiers the description uses as code names that the node does not have, labelled by a
person reading the description and the source. Unit: one (description, name) pair. A name the
checker flags is a true positive when labelled hallucinated, else a false positive; a labelled
name it does not flag is a false negative.
"""

from __future__ import annotations

import json
from pathlib import Path

from blarify_lab.grounding import check_grounding

LABELS = Path(__file__).resolve().parent.parent / "grounding_labels.json"


def _score() -> tuple[int, int, int, int]:
    entries = json.loads(LABELS.read_text())
    tp = fp = fn = 0
    for entry in entries:
        flagged = set(
            check_grounding(
                entry["description"], entry["source"], entry["children"], node_path=entry["path"]
            ).ungrounded
        )
        truth = set(entry["hallucinated"])
        tp += len(flagged & truth)
        fp += len(flagged - truth)
        fn += len(truth - flagged)
    return len(entries), tp, fp, fn


def test_the_labelled_set_is_large_and_real() -> None:
    entries = json.loads(LABELS.read_text())
    assert len(entries) >= 60
    assert len({e["description"] for e in entries}) == len(entries), "no duplicates"
    assert sum(len(e["hallucinated"]) for e in entries) >= 20, "enough invented names to count"
    assert all(e["source"] or e["children"] for e in entries)


def test_checker_precision_and_recall_on_real_descriptions() -> None:
    _, tp, fp, fn = _score()
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    assert precision >= 0.9, (precision, tp, fp, fn)
    assert recall >= 0.9, (recall, tp, fp, fn)
