"""What mode=find_label_errors writes: the ranked suspects, their image grid and corrected label files."""

import csv
import io
import os

import numpy as np

from dataset.labels import LabelFileError, write_labels_csv
from multi_label.evaluation.plots import example_grid
from multi_label.label_quality.confident_learning import DIRECTIONS
from utils.atomic import write_text

COLUMNS = ("image", "label_file", "class", "label", "direction", "flagged", "score", "probability", "image_score")
CORRECTED_SUFFIX = ".corrected"  # train.csv -> train.corrected.csv, then train.corrected-2.csv, ...
MAX_CORRECTED_COPIES = 100


def label_errors_csv(pool, issues, probabilities, ranked):
    """CSV text of the suspect entries, most suspect first (COLUMNS; `ranking.suspect_entries`).

    `label` is the entry's current value, `direction` what it likely should be ("likely missing":
    a 0 that looks positive; "likely spurious": a 1 that looks negative), `flagged` "yes" where
    confident learning flags it (the corrected copies flip those) and "no" for an entry listed
    because the folds' models contradict it (see `ranking`), `score` its label
    quality (the out-of-fold probability of its current label; lower = more suspect),
    `probability` the out-of-fold probability of the class, `image_score` the image's aggregate.

    Args:
        pool: LabelPool. The labels checked.
        issues: LabelIssues. From `ranking.find_label_issues`.
        probabilities: np.ndarray. [N, C] out-of-fold probabilities.
        ranked: list[tuple[int, int]]. (row, class) pairs in order (`ranking.ranked_entries`).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row, c in ranked:
        label = int(pool.labels[row, c])
        writer.writerow([pool.names[row], pool.source(row), pool.class_names[c], label, DIRECTIONS[label],
                         "yes" if issues.flagged[row, c] else "no", f"{issues.scores[row, c]:.6f}",
                         f"{probabilities[row, c]:.6f}", f"{issues.image_scores[row]:.6f}"])
    return out.getvalue()


def write_label_errors(path, pool, issues, probabilities, ranked):
    """Writes `label_errors_csv` atomically to `path`."""
    write_text(path, label_errors_csv(pool, issues, probabilities, ranked))


def corrected_path(source):
    """A path beside `source` that no file has yet: <stem>.corrected.csv, else <stem>.corrected-2.csv, ...

    Raises:
        LabelFileError: MAX_CORRECTED_COPIES such files exist already.
    """
    stem = os.path.splitext(source)[0] + CORRECTED_SUFFIX
    for copy in range(1, MAX_CORRECTED_COPIES + 1):
        path = f"{stem}.csv" if copy == 1 else f"{stem}-{copy}.csv"
        if not os.path.exists(path):
            return path
    raise LabelFileError(f"{source}: {MAX_CORRECTED_COPIES} corrected copies exist beside it ({stem}*.csv); "
                         "remove some to write another")


def write_corrected_files(pool, flagged):
    """Writes a copy of each pooled label file with its flagged entries flipped (1 <-> 0), beside it.

    The original and any existing file are never written over (`corrected_path`). Rows, image
    names and -1 entries are as in the original, so the copy is used in its place as it is.

    Args:
        pool: LabelPool. The labels checked.
        flagged: np.ndarray. bool [N, C]: the entries to flip.

    Returns:
        list[tuple[str, int]]. (file written, entries flipped) per label file.
    """
    written = []
    for t, table in enumerate(pool.tables):
        rows = np.flatnonzero(pool.table_of_row == t)
        labels = table.labels.copy()
        flips = flagged[rows] & (pool.labels[rows] != -1)
        in_table = pool.row_in_table[rows]
        labels[in_table] = np.where(flips, 1 - pool.labels[rows], labels[in_table])
        path = corrected_path(table.source)
        write_labels_csv(path, table.names, table.class_names, labels)
        written.append((path, int(flips.sum())))
    return written


def draw_suspects(path, pool, probabilities, ranked, count):
    """An image grid of the `count` most suspect entries: class, direction and probability on each.

    Args:
        path: str. PNG file.
        pool: LabelPool. The labels checked.
        probabilities: np.ndarray. [N, C] out-of-fold probabilities.
        ranked: list[tuple[int, int]]. (row, class) pairs, most suspect first.
        count: int. Entries drawn.
    """
    shown = [(pool.images[row], pool.names[row],
              f"{pool.class_names[c]}: {DIRECTIONS[int(pool.labels[row, c])]}", float(probabilities[row, c]))
             for row, c in ranked[:count]]
    example_grid(path, shown, f"The {len(shown)} most suspect labels (p: out-of-fold probability of the class)")
