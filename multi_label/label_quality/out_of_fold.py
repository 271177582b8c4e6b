"""Each fold's label files, and the held-out probabilities that a finished fold keeps for a rerun.

Fold k trains on `data/fold-<k>.train.csv` (the other folds' rows) and predicts the images of
`data/fold-<k>.heldout.csv`; its probabilities go to `fold-<k>/heldout_probabilities.csv`, written
atomically after the prediction, so a fold whose file is there is finished and a killed one is not.
"""

import csv
import io
import os

import numpy as np

from dataset.labels import write_labels_csv
from utils.atomic import write_text

HELD_OUT_FILE = "heldout_probabilities.csv"


def fold_label_files(folder, pool, fold_of, fold):
    """Writes (once) and returns the (training, held-out) label files of fold `fold` (0-based).

    The image paths are written relative to the files' folder, so the fold files read the images
    from wherever the original files' paths pointed. A file already there is kept: the fold plan
    (`folds.fold_plan`) guarantees it holds these rows.

    Args:
        folder: str. models/<run_name>/label-errors.
        pool: LabelPool. The labels checked.
        fold_of: np.ndarray. int [N]: each row's fold.
        fold: int. The fold held out.
    """
    data = os.path.join(folder, "data")
    paths = []
    for part, rows in (("train", fold_of != fold), ("heldout", fold_of == fold)):
        path = os.path.join(data, f"fold-{fold + 1}.{part}.csv")
        if not os.path.isfile(path):
            names = [os.path.relpath(pool.images[row], os.path.abspath(data)) for row in np.flatnonzero(rows)]
            write_labels_csv(path, names, pool.class_names, pool.labels[rows])
        paths.append(path)
    return tuple(paths)


def aligned_probabilities(names, predicted_names, probabilities):
    """The probabilities in the order of `names`; NaN rows for images the pipeline skipped (unreadable).

    Args:
        names: list[str]. The images of the held-out table, as its dataset names them.
        predicted_names: list[str]. The names of the predicted images, in prediction order.
        probabilities: np.ndarray. [len(predicted_names), C].
    """
    probabilities = np.asarray(probabilities, np.float64)
    row_of = {name: i for i, name in enumerate(predicted_names)}
    out = np.full((len(names), probabilities.shape[1]), np.nan)
    for i, name in enumerate(names):
        if name in row_of:
            out[i] = probabilities[row_of[name]]
    return out


def probabilities_csv(names, class_names, probabilities, sources=None):
    """CSV text: image (and label_file), one probability per class; empty cells for an image not predicted."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["image", *(["label_file"] if sources is not None else []), *class_names])
    for i, (name, row) in enumerate(zip(names, probabilities)):
        source = [] if sources is None else [sources[i]]
        writer.writerow([name, *source, *("" if np.isnan(p) else f"{p:.6f}" for p in row)])
    return out.getvalue()


def save_fold_probabilities(path, names, class_names, probabilities):
    """Writes a fold's held-out probabilities atomically (the fold is finished once the file is there)."""
    write_text(path, probabilities_csv(names, class_names, probabilities))


def load_fold_probabilities(path, names, class_names):
    """A finished fold's probabilities [len(names), C], or None when the file is missing or holds other images.

    Args:
        path: str. The fold's heldout_probabilities.csv.
        names: list[str]. The images it must hold, in order.
        class_names: list[str]. The classes it must hold, in order.
    """
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != ["image", *class_names] or [row[0] for row in rows[1:]] != list(names):
        return None
    return np.array([[float(v) if v else np.nan for v in row[1:]] for row in rows[1:]], np.float64).reshape(
        len(names), len(class_names))
