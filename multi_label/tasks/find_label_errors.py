"""mode=find_label_errors: K-fold out-of-fold probabilities of train_labels and val_labels, ranked by cleanlab.

    python run.py mode=find_label_errors run_name=mine train_labels=data/train.csv val_labels=data/val.csv

The rows of both files are pooled and cut into `label_error_folds` stratified folds. Each fold is
its own training run, models/<run_name>/label-errors/fold-<k>/, with the run's settings for
`label_error_epochs` epochs on the other folds; the same command resumes a killed fold from its
backup and skips a finished one (its held-out probabilities are saved). A fold trains without a
validation split: every image is then judged by a model trained on (K-1)/K of the data for the
same epochs, and its last weights are taken (a small validation split would take images from
training and pick the epoch on a noisy few). Then `multi_label.label_quality.confident_learning` flags and
scores the known labels; models/<run_name>/label-errors/ gets label_errors.csv (the flagged
entries and those the folds' models contradict, ranked by score, the flag marked),
label_errors.png and probabilities.csv, and each label file gets a corrected copy beside it
(the flagged entries flipped).
"""

import dataclasses
import os

import numpy as np
from tqdm import tqdm

from dataset.labels import read_labels
from dataset.run_splits import load_split
from multi_label.evaluation.inference import predict_dataset, sigmoid
from multi_label.label_quality.confident_learning import DIRECTIONS, SUSPECT_SCORE, find_label_issues, suspect_entries
from multi_label.label_quality.folds import fold_plan
from multi_label.label_quality.out_of_fold import (
    HELD_OUT_FILE,
    aligned_probabilities,
    fold_label_files,
    load_fold_probabilities,
    probabilities_csv,
    save_fold_probabilities,
)
from multi_label.label_quality.outputs import draw_suspects, write_corrected_files, write_label_errors
from multi_label.label_quality.pool import check_pool, pool_tables
from multi_label.tasks.inputs import image_names, input_dataset
from multi_label.tasks.settings import split_settings
from multi_label.tasks.train import train
from multi_label.trained_run import load_checkpoint
from utils.atomic import write_text
from utils.run_folder import changed_settings, run_folders, saved_settings

FLAGGED_SHARE_NOTED = 0.1  # flagging more of the known labels than this gets a note: the models may be undertrained


def run_find_label_errors(config):
    """Trains the folds (or reads the finished ones), ranks the labels and writes the outputs."""
    settings = split_settings(config)
    tables = [table for table in (load_split(settings, "train_labels"), load_split(settings, "val_labels"))
              if table is not None]
    pool = pool_tables(tables)
    check_pool(pool, config.label_error_folds, config.batch_size)
    folder = os.path.join(run_folders(config.run_name)[0], "label-errors")
    fold_of = fold_plan(folder, pool, config.label_error_folds, config.seed, config.overwrite)
    probabilities = np.full(pool.labels.shape, np.nan)
    for fold in range(config.label_error_folds):
        probabilities[fold_of == fold] = fold_probabilities(config, pool, fold_of, fold, folder)
    unread = int(np.isnan(probabilities).any(axis=1).sum())
    if unread:
        print(f"warning: {unread} images could not be read; their labels are not judged")
    issues = find_label_issues(pool.labels, probabilities)
    report_outputs(config, pool, issues, probabilities, folder)


def fold_probabilities(config, pool, fold_of, fold, folder):
    """The held-out probabilities of fold `fold`: read back when finished, else trained for and predicted."""
    folds = config.label_error_folds
    train_csv, heldout_csv = fold_label_files(folder, pool, fold_of, fold)
    fold_config = dataclasses.replace(
        config, run_name=f"{config.run_name}/label-errors/fold-{fold + 1}", train_labels=train_csv,
        val_labels="", test_labels="", image_root=None,
        epochs=config.epochs if config.label_error_epochs is None else config.label_error_epochs)
    heldout = read_labels(heldout_csv, class_names=pool.class_names)
    names = image_names(heldout, fold_config.data_format)  # a finished fold needs no TFRecord shards
    path = os.path.join(run_folders(fold_config.run_name)[0], HELD_OUT_FILE)
    saved = saved_settings(fold_config.run_name)
    finished = saved is not None and changed_settings(saved, dataclasses.asdict(fold_config)) in ([], ["precision"])
    probabilities = load_fold_probabilities(path, names, pool.class_names) if finished else None
    if probabilities is not None:
        print(f"fold {fold + 1}/{folds}: finished before; read {path}")
        return probabilities
    epochs = fold_config.epochs
    print(f"fold {fold + 1}/{folds}: training on {int((fold_of != fold).sum())} images for {epochs} "
          f"epoch{'s' * (epochs != 1)}, then predicting the {len(heldout)} held out")
    best = train(fold_config)  # resumes a killed fold from its backup; no validation: the last epoch's model
    model = load_checkpoint(best, len(pool.class_names))
    dataset, _ = input_dataset(fold_config, heldout, training=False)
    with tqdm(total=len(heldout), desc=f"fold {fold + 1}/{folds} held out", unit="img", disable=None) as bar:
        logits, _, done = predict_dataset(model, dataset, progress=bar.update)
    probabilities = aligned_probabilities(names, done, sigmoid(logits))
    save_fold_probabilities(path, names, pool.class_names, probabilities)
    print(f"fold {fold + 1}/{folds}: wrote {path}")
    return probabilities


def report_outputs(config, pool, issues, probabilities, folder):
    """Writes label_errors.csv, label_errors.png, probabilities.csv and the corrected files; prints the paths."""
    ranked = suspect_entries(issues)
    errors_path = os.path.join(folder, "label_errors.csv")
    write_label_errors(errors_path, pool, issues, probabilities, ranked)
    probabilities_path = os.path.join(folder, "probabilities.csv")
    write_text(probabilities_path, probabilities_csv(pool.names, pool.class_names, probabilities,
                                                     [pool.source(row) for row in range(len(pool))]))
    known, flagged = int((pool.labels != -1).sum()), int(issues.flagged.sum())
    missing = int((issues.flagged & (pool.labels == 0)).sum())
    print(f"Flagged {flagged} of {known} known labels in {len(pool)} images: {missing} likely missing (a 0 "
          f"that looks positive), {flagged - missing} likely spurious (a 1 that looks negative)")
    if len(ranked) > flagged:
        print(f"Listed with them, not flagged: {len(ranked) - flagged} entries whose label the folds' models give a "
              f"probability below {SUSPECT_SCORE} (a class nearly every image has, or almost none, sets confident "
              "learning's bar near 1); ranked among the flagged ones by score, worth a look")
    if flagged > FLAGGED_SHARE_NOTED * known:
        print(f"note: {flagged / known:.0%} of the known labels are flagged, more than label noise usually is: the "
              "folds' models may be undertrained (raise label_error_epochs); review before using the corrected files")
    for c in issues.unflagged_classes:
        print(f"note: class {pool.class_names[c]!r} has one label value in every known entry; scored, not flagged")
    for row, c in ranked[:5]:
        print(f"  {pool.names[row]}  {pool.class_names[c]}={pool.labels[row, c]}: {DIRECTIONS[pool.labels[row, c]]} "
              f"(p={probabilities[row, c]:.3f}, score {issues.scores[row, c]:.3f}"
              f"{'' if issues.flagged[row, c] else ', not flagged'})")
    print(f"Wrote {errors_path}\nWrote {probabilities_path}")
    if config.label_error_examples:
        png = os.path.join(folder, "label_errors.png")
        draw_suspects(png, pool, probabilities, ranked, config.label_error_examples)
        print(f"Wrote {png}")
    for path, flips in write_corrected_files(pool, issues.flagged):
        print(f"Wrote {path} ({flips} labels flipped; the original is unchanged)")
