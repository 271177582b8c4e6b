"""K folds of the pooled labels, each class's positives spread across them, and the plan kept with the run.

Every image is held out once, by a model trained on the other K - 1 folds. The folds are cut by
iterative stratification (`dataset.split.stratified_split`, Sechidis et al. 2011): fold 1 takes
1/K of the rows, fold 2 takes 1/(K-1) of the rest, and so on, each cut handing the rarest class's
images out first. A class with at least K positives then has positives in every fold, and every
fold's model sees about (K-1)/K of each class.
"""

import hashlib
import json
import os
import time

import numpy as np

from dataset.split import stratified_split
from utils.atomic import write_text
from utils.config import ConfigError

PLAN_FILE = "folds.json"


def assign_folds(labels, folds, seed=0):
    """Returns int [N]: the fold (0 to folds - 1) of each row.

    Args:
        labels: np.ndarray. [N, C] of 1 / 0 / -1 (-1 counts as not positive).
        folds: int. K >= 2, at most N.
        seed: int. Seeds each cut.
    """
    labels = np.asarray(labels)
    if not 2 <= folds <= len(labels):
        raise ValueError(f"folds must be in [2, {len(labels)}] (the rows). Received: folds={folds!r}")
    fold_of = np.full(len(labels), folds - 1)
    left = np.arange(len(labels))
    for k in range(folds - 1):
        held_out = stratified_split(labels[left], 1.0 / (folds - k), seed=seed + k)
        fold_of[left[held_out]] = k
        left = left[~held_out]
    return fold_of


def fold_plan(folder, pool, folds, seed, overwrite=False):
    """The folds of the pooled rows, kept in `folder`/folds.json so that a rerun trains the same folds.

    The plan names K, the seed and a digest of the pooled files, names and labels. A rerun on other
    labels or settings would mix models trained on different folds: it stops with one line, or with
    `overwrite` moves the old folder aside (never deletes it).

    Args:
        folder: str. models/<run_name>/label-errors.
        pool: LabelPool. The labels checked.
        folds: int. K.
        seed: int. The run's seed.
        overwrite: bool. Move a folder holding another plan aside.

    Returns:
        np.ndarray. int [N]: each row's fold.
    """
    fold_of = assign_folds(pool.labels, folds, seed)
    plan = {"folds": folds, "seed": seed, "data_sha256": pool_digest(pool), "fold_of_row": fold_of.tolist()}
    path = os.path.join(folder, PLAN_FILE)
    if os.path.isfile(path):
        with open(path) as f:
            saved = json.load(f)
        if saved != plan and not overwrite:
            raise ConfigError(f"{folder} holds the folds of other labels or settings (saved label_error_folds="
                              f"{saved.get('folds')}, seed={saved.get('seed')}); use another run_name, or "
                              "overwrite=True to move that folder aside")
        if saved != plan:
            moved = f"{folder}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"
            os.replace(folder, moved)
            print(f"Moved the previous label-error folds {folder} to {moved}")
    write_text(path, json.dumps(plan) + "\n")
    return fold_of


def pool_digest(pool):
    """SHA-256 of the pooled rows: their label files, image names and labels."""
    digest = hashlib.sha256()
    for row in range(len(pool)):
        digest.update(f"{pool.source(row)}\0{pool.names[row]}\0".encode())
    digest.update(np.ascontiguousarray(pool.labels, np.int32).tobytes())
    return digest.hexdigest()
