"""Hide labels of a fully labelled file, reproducibly, to measure learning from partial labels.

    python -m benchmarks.hide_labels data/demo/train.csv --share 0.5        # -> train.hidden-50.csv
    python -m benchmarks.hide_labels data/demo/train.csv --single-positive  # -> train.single-positive.csv

`--share s` turns a share s of all the known entries (1 and 0 alike, chosen uniformly) into -1: the
partially labelled set of Durand et al. (CVPR 2019). `--single-positive` keeps one positive per
image, drawn uniformly among its positives, and turns every other entry into -1: the single
positive set of Cole et al. (CVPR 2021); an image without a positive keeps nothing. The output is
written beside the input (its image paths stay valid) and never over an existing file.
"""

import argparse
import os
import sys

import numpy as np

from dataset.arguments import run_tool
from dataset.labels import LabelFileError, read_labels, write_labels_csv


def hide_share(labels, share, seed=0):
    """Returns `labels` with round(share * known entries) of its known entries, drawn uniformly, set to -1.

    Args:
        labels: np.ndarray. [N, C] of 1 / 0 / -1.
        share: float. In (0, 1).
        seed: int. Seed of the entries hidden.
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1). Received: share={share!r}")
    labels = np.asarray(labels)
    known = np.argwhere(labels != -1)
    hidden = known[np.random.default_rng(seed).choice(len(known), int(round(share * len(known))), replace=False)]
    out = labels.copy()
    out[hidden[:, 0], hidden[:, 1]] = -1
    return out


def single_positive(labels, seed=0):
    """Returns -1 everywhere but one positive per image, drawn uniformly among the image's positives.

    Args:
        labels: np.ndarray. [N, C] of 1 / 0 / -1.
        seed: int. Seed of the positives kept.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    out = np.full_like(labels, -1)
    for row in range(len(labels)):
        positives = np.flatnonzero(labels[row] == 1)
        if len(positives):
            out[row, rng.choice(positives)] = 1
    return out


def hide_label_file(path, share=None, seed=0):
    """Writes the file with labels hidden beside `path` and returns its path; `share` None: single positive."""
    table = read_labels(path)
    stem = os.path.splitext(path)[0]
    output = f"{stem}.single-positive.csv" if share is None else f"{stem}.hidden-{round(share * 100)}.csv"
    if os.path.exists(output):
        raise LabelFileError(f"{output}: already exists; remove it to hide labels of {path} again")
    hidden = single_positive(table.labels, seed) if share is None else hide_share(table.labels, share, seed)
    write_labels_csv(output, table.names, table.class_names, hidden)
    known = hidden != -1
    print(f"{path}: {known.mean():.1%} of the entries stay known ({int((hidden == 1).sum())} positives, "
          f"{int((hidden == 0).sum())} negatives), the rest -1 -> {output}")
    return output


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hide_labels", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("label_file", help="canonical .csv label file")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--share", type=float, help="share of the known entries set to -1, in (0, 1)")
    how.add_argument("--single-positive", action="store_true", help="keep one positive per image, -1 elsewhere")
    parser.add_argument("--seed", type=int, default=0, help="seed of the entries hidden or kept (default 0)")
    args = parser.parse_args(argv)
    return run_tool(hide_label_file, args.label_file, args.share, args.seed)[1]


if __name__ == "__main__":
    sys.exit(main())
