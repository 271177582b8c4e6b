"""Plant label errors in a label file, reproducibly, to measure how many a label-error finder recovers.

    python -m benchmarks.label_errors_precision plant data/demo/train.csv --fraction 0.03 --seed 0
    # writes data/demo/train.planted.csv (the labels with errors) and
    # data/demo/train.planted_entries.csv (image, label_file, class, original, planted: one row per error)

A share `fraction` of the known positive entries (1) become 0 (a missing label), and as many
known negative entries (0) become 1 (a spurious one); -1 entries are never touched. The original
file is not written to, nor any existing file.
"""

import csv
import io
import os

import numpy as np

from dataset.labels import LabelFileError, read_labels, write_labels_csv
from utils.atomic import write_text

PLANTED_COLUMNS = ("image", "label_file", "class", "original", "planted")


def plant_errors(labels, fraction, seed=0):
    """Returns (labels with errors, planted entries as an int [E, 2] array of (row, class)).

    Args:
        labels: np.ndarray. [N, C] of 1 / 0 / -1.
        fraction: float. In (0, 1): the share of the known positives flipped to 0; as many known
            negatives are flipped to 1.
        seed: int. Seed of the entries chosen.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1); got {fraction!r}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    positives, negatives = np.argwhere(labels == 1), np.argwhere(labels == 0)
    count = int(round(fraction * len(positives)))
    if count == 0 or count > len(negatives):
        raise ValueError(f"fraction={fraction} of {len(positives)} known positives gives {count} errors to plant, "
                         f"and as many of the {len(negatives)} known negatives; expected at least 1, at most those")
    chosen = np.concatenate([positives[rng.choice(len(positives), count, replace=False)],
                             negatives[rng.choice(len(negatives), count, replace=False)]])
    planted = labels.copy()
    planted[chosen[:, 0], chosen[:, 1]] = 1 - labels[chosen[:, 0], chosen[:, 1]]
    return planted, chosen[np.lexsort((chosen[:, 1], chosen[:, 0]))]


def plant_label_file(path, fraction, seed=0):
    """Writes `path` with planted errors and the list of the entries planted; returns the two files written.

    They are `<stem>.planted.csv` and `<stem>.planted_entries.csv`, beside `path` (so the image
    paths stay valid), and never written over.

    Args:
        path: str. A canonical label CSV.
        fraction: float. As `plant_errors`.
        seed: int. As `plant_errors`.
    """
    table = read_labels(path)
    stem = os.path.splitext(path)[0]
    output, entries_output = f"{stem}.planted.csv", f"{stem}.planted_entries.csv"
    existing = [out for out in (output, entries_output) if os.path.exists(out)]
    if existing:
        raise LabelFileError(f"{existing[0]}: already exists; remove it to plant errors in {path} again")
    planted, entries = plant_errors(table.labels, fraction, seed)
    write_labels_csv(output, table.names, table.class_names, planted)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PLANTED_COLUMNS)
    for row, c in entries:
        writer.writerow([table.names[row], output, table.class_names[c], table.labels[row, c], planted[row, c]])
    write_text(entries_output, out.getvalue())
    missing = int((planted[entries[:, 0], entries[:, 1]] == 0).sum())
    print(f"{path}: planted {len(entries)} errors ({missing} positives removed, {len(entries) - missing} spurious "
          f"positives added) -> {output}; the list: {entries_output}")
    return output, entries_output
