"""Plants label errors (`plant`), then measures how many mode=find_label_errors recovers (`measure`).

    python -m benchmarks.label_errors_precision plant data/demo/train.csv --fraction 0.03 --seed 0
    python run.py mode=find_label_errors run_name=planted train_labels=data/demo/train.planted.csv
    python -m benchmarks.label_errors_precision measure data/demo/train.planted_entries.csv \
        models/planted/label-errors

`plant` (`benchmarks.plant_errors`) turns 3 % of the known positives into 0 and as many known
negatives into 1, seeded, into <stem>.planted.csv, and lists them in <stem>.planted_entries.csv.
`measure` prints the precision and recall of the flagged entries (label_errors.csv), and of the N
most suspect known entries of the whole ranking, N being the number planted (recomputed from
probabilities.csv and the label files it names: run it from the folder the run was started in).
An entry is (label file name, image, class); every flagged entry that was not planted counts as a
false positive.
"""

import argparse
import csv
import os
import sys

import numpy as np
from cleanlab.rank import get_label_quality_scores

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.plant_errors import plant_label_file  # noqa: E402
from dataset.arguments import run_tool  # noqa: E402  (needs the repo root on sys.path)
from dataset.labels import read_labels  # noqa: E402
from multi_label.label_quality.confident_learning import (  # noqa: E402
    DIRECTIONS,
    class_task,
    find_label_issues,
    ranked_entries,
)
from multi_label.label_quality.pool import pool_tables  # noqa: E402

OTHER_SCORES = ("normalized_margin", "confidence_weighted_entropy")  # beside the mode's self_confidence


def entry_key(label_file, image, class_name):
    return os.path.basename(label_file), image, class_name


def read_rows(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_run(folder):
    """(pool, out-of-fold probabilities) from `folder`/probabilities.csv and the label files it names."""
    with open(os.path.join(folder, "probabilities.csv"), encoding="utf-8") as f:
        rows = list(csv.reader(f))
    files = list(dict.fromkeys(row[1] for row in rows[1:]))
    pool = pool_tables([read_labels(path) for path in files])
    if [row[0] for row in rows[1:]] != pool.names:
        raise ValueError(f"{folder}/probabilities.csv does not hold the rows of {files} in order")
    return pool, np.array([[float(v) if v else np.nan for v in row[2:]] for row in rows[1:]])


def precision_recall(found, planted):
    hits = len(set(found) & planted)
    return hits / max(len(found), 1), hits / max(len(planted), 1), hits


def pool_keys(pool, entries):
    """The keys of (row, class) pairs of `pool`."""
    return [entry_key(pool.source(row), pool.names[row], pool.class_names[c]) for row, c in entries]


def top_precision(pool, scores, planted):
    """The share planted among the len(planted) known entries of lowest score (NaN scores left out)."""
    rows, classes = np.nonzero(np.isfinite(scores))
    order = np.argsort(scores[rows, classes], kind="stable")[:len(planted)]
    return precision_recall(pool_keys(pool, zip(rows[order], classes[order])), planted)[0]


def measure(planted_path, folder):
    """Prints the precision and recall of the flagged entries and of the top of the ranking.

    Then, for the same top N: the precision by direction (a 0 that looks positive, a 1 that looks
    negative) and under cleanlab's other label-quality scores, to tell a weak model from a weak score.
    """
    planted = {entry_key(r["label_file"], r["image"], r["class"]) for r in read_rows(planted_path)}
    flagged = [entry_key(r["label_file"], r["image"], r["class"])
               for r in read_rows(os.path.join(folder, "label_errors.csv")) if r.get("flagged", "yes") == "yes"]
    precision, recall, hits = precision_recall(flagged, planted)
    print(f"flagged: {len(flagged)} entries, {hits} of the {len(planted)} planted: precision {precision:.3f}, "
          f"recall {recall:.3f}")
    pool, probabilities = load_run(folder)
    issues = find_label_issues(pool.labels, probabilities)
    top = ranked_entries(issues, flagged_only=False)[:len(planted)]
    keys = pool_keys(pool, top)
    precision, recall, hits = precision_recall(keys, planted)
    print(f"top {len(planted)} of the ranking: {hits} planted: precision {precision:.3f}, recall {recall:.3f}")
    for label, direction in DIRECTIONS.items():
        chosen = [key for key, (row, c) in zip(keys, top) if pool.labels[row, c] == label]
        print(f"  of them labelled {label} ({direction}): {len(chosen)}, precision "
              f"{precision_recall(chosen, planted)[0]:.3f}")
    for method in OTHER_SCORES:
        scores = np.full(pool.labels.shape, np.nan)
        for c in range(pool.labels.shape[1]):
            known, given, binary = class_task(pool.labels, probabilities, c)
            scores[known, c] = get_label_quality_scores(given, binary, method=method)
        print(f"top {len(planted)} by cleanlab's {method} score: precision "
              f"{top_precision(pool, scores, planted):.3f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    plant = commands.add_parser("plant", help="write <stem>.planted.csv and <stem>.planted_entries.csv")
    plant.add_argument("label_file", help="canonical .csv label file")
    plant.add_argument("--fraction", type=float, default=0.03, help="share of the known positives removed; as many "
                                                                    "spurious ones are added (default 0.03)")
    plant.add_argument("--seed", type=int, default=0, help="seed of the entries chosen (default 0)")
    found = commands.add_parser("measure", help="precision and recall of a run's label_errors.csv")
    found.add_argument("planted", help="the planted entries CSV (`plant`)")
    found.add_argument("folder", help="the run's label-errors folder (label_errors.csv, probabilities.csv)")
    args = parser.parse_args(argv)
    if args.command == "plant":
        return run_tool(plant_label_file, args.label_file, args.fraction, args.seed)[1]
    return run_tool(measure, args.planted, args.folder)[1]


if __name__ == "__main__":
    sys.exit(main())
