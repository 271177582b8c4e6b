"""Split a label file into two (training and validation), keeping every class's share in both.

    python -m dataset.split data/train.csv --fraction 0.2 --seed 0
    # writes data/train.fit.csv (80 %) and data/train.val.csv (20 %); the original is not touched
    # a sparse label file gives sparse parts (data/train.sparse.csv: train.sparse.fit.csv, ...)

A random split of a multi-label file can leave a rare class with no positive in the validation
part, and its AP undefined. Iterative stratification (Sechidis, Tsoumakas and Vlahavas, "On the
Stratification of Multi-Label Data", ECML PKDD 2011) hands out the rarest class's images first,
each to the part that still wants most of that class, so each class is split close to `fraction`.
Unknown (-1) entries count as not positive.
"""

import argparse
import os
import sys

import numpy as np

from dataset.arguments import run_tool
from dataset.labels import LabelFileError, is_sparse_file, read_labels, write_labels_csv
from dataset.sparse_labels import write_labels_sparse


def stratified_split(labels, fraction, seed=0):
    """Returns a bool [N] mask of the rows for the held-out part (about `fraction` of the rows).

    Args:
        labels: np.ndarray. [N, C] of 1 / 0 / -1.
        fraction: float. In (0, 1): the held-out share.
        seed: int. Seed of the order of rows and of ties.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1); got {fraction!r}")
    rng = np.random.default_rng(seed)
    positive = np.asarray(labels) == 1
    n = len(positive)
    shares = np.array([fraction, 1.0 - fraction])
    wanted_rows = shares * n  # rows each part still wants
    wanted = np.outer(shares, positive.sum(0)).astype(float)  # [2, C] positives of each class each part still wants
    part = np.full(n, -1)
    left = positive.copy()
    while left.any():
        counts = left.sum(0)
        rarest = np.flatnonzero(counts == counts[counts > 0].min())
        label = rng.choice(rarest)
        for row in rng.permutation(np.flatnonzero(left[:, label])):
            best = np.flatnonzero(wanted[:, label] == wanted[:, label].max())
            if len(best) > 1:  # a tie: the part that wants more rows, then chance
                best = best[wanted_rows[best] == wanted_rows[best].max()]
            chosen = rng.choice(best)
            part[row] = chosen
            wanted[chosen] -= positive[row]
            wanted_rows[chosen] -= 1
            left[row] = False
    rest = rng.permutation(np.flatnonzero(part == -1))  # rows with no positive fill the rows still wanted
    held_out = int(max(0, round(wanted_rows[0])))
    part[rest[:held_out]] = 0
    part[rest[held_out:]] = 1
    return part == 0


def split_label_file(path, fraction, seed=0, kept_path=None, held_out_path=None, class_names=None, image_root=None):
    """Writes the two parts of a label file; returns (kept_path, held_out_path).

    Args:
        path: str. Label file (canonical `.csv`, its sparse form, or the text format with
            `class_names`); the parts are written in its format (text: canonical CSV).
        fraction: float. Share of the rows in the held-out part.
        seed: int. Seed of the split.
        kept_path, held_out_path: str or None. Output files; default `<stem>.fit.csv` and
            `<stem>.val.csv` beside `path`. Existing files are never overwritten.
        class_names: list[str] or None. For the text format.
        image_root: str or None. Folder the image paths are relative to; default the file's folder.
    """
    table = read_labels(path, class_names=class_names, image_root=image_root)
    stem = os.path.splitext(path)[0]
    kept_path = kept_path or f"{stem}.fit.csv"
    held_out_path = held_out_path or f"{stem}.val.csv"
    for out in (kept_path, held_out_path):
        if os.path.exists(out):
            raise LabelFileError(f"{out}: already exists; remove it or name other output files")
    mask = stratified_split(table.labels, fraction, seed)
    write = write_labels_sparse if is_sparse_file(path) else write_labels_csv
    for out, rows in ((kept_path, ~mask), (held_out_path, mask)):
        folder = os.path.dirname(os.path.abspath(out))
        # paths relative to the new file's folder, so the images are found from wherever it is written
        names = [os.path.relpath(image, folder) for image, keep in zip(table.images, rows) if keep]
        write(out, names, table.class_names, table.labels[rows])
    positives = (table.labels == 1)
    print(f"{path}: {int((~mask).sum())} rows to {kept_path}, {int(mask.sum())} to {held_out_path}")
    for k, name in enumerate(table.class_names):
        total = int(positives[:, k].sum())
        print(f"  {name}: {total - int(positives[mask, k].sum())} + {int(positives[mask, k].sum())} positives")
    return kept_path, held_out_path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dataset.split", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("label_file", help="canonical .csv label file")
    parser.add_argument("--fraction", type=float, default=0.2, help="share of the rows held out (default 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    parser.add_argument("--kept", default=None, help="output for the rest (default <stem>.fit.csv)")
    parser.add_argument("--held-out", default=None, help="output for the held-out rows (default <stem>.val.csv)")
    args = parser.parse_args(argv)
    return run_tool(split_label_file, args.label_file, args.fraction, args.seed, args.kept, args.held_out)[1]


if __name__ == "__main__":
    sys.exit(main())
