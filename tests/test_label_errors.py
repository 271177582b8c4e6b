"""mode=find_label_errors: stratified folds, cleanlab's ranking on known labels, the outputs, and whole runs."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, run_in_process
from PIL import Image
from test_end_to_end import TINY, run

from benchmarks.label_errors_precision import main, precision_recall
from benchmarks.plant_errors import plant_errors, plant_label_file
from dataset.labels import LabelFileError, read_labels, write_labels_csv
from multi_label.label_quality.confident_learning import (
    DIRECTIONS,
    SUSPECT_SCORE,
    find_label_issues,
    ranked_entries,
    suspect_entries,
)
from multi_label.label_quality.folds import assign_folds, fold_plan
from multi_label.label_quality.out_of_fold import (
    aligned_probabilities,
    load_fold_probabilities,
    probabilities_csv,
    save_fold_probabilities,
)
from multi_label.label_quality.outputs import COLUMNS, draw_suspects, write_corrected_files, write_label_errors
from multi_label.label_quality.pool import check_pool, pool_tables
from utils.config import ConfigError, load_config


def random_labels(rows=300, seed=0):
    """[rows, 6] labels whose classes run from common (40 %) to rare (3 %), a few -1."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((rows, 6)) < np.array([0.4, 0.3, 0.2, 0.1, 0.05, 0.03])).astype(np.int32)
    labels[rng.random(labels.shape) < 0.05] = -1
    return labels


# ------------------------------------------------------------------ folds

def test_each_image_is_in_exactly_one_fold_of_about_the_same_size():
    labels = random_labels()
    fold_of = assign_folds(labels, 5, seed=1)
    assert fold_of.shape == (300,) and set(fold_of.tolist()) == set(range(5))
    assert np.bincount(fold_of).min() >= 300 // 5 - 2 and np.bincount(fold_of).max() <= 300 // 5 + 2


def test_folds_are_seeded():
    labels = random_labels()
    assert np.array_equal(assign_folds(labels, 4, seed=3), assign_folds(labels, 4, seed=3))
    assert not np.array_equal(assign_folds(labels, 4, seed=3), assign_folds(labels, 4, seed=4))


def test_every_class_is_spread_across_the_folds():
    labels = random_labels()
    fold_of = assign_folds(labels, 5, seed=0)
    for c in range(labels.shape[1]):
        per_fold = np.bincount(fold_of[labels[:, c] == 1], minlength=5)
        share = (labels[:, c] == 1).sum() / 5
        assert per_fold.min() >= np.floor(share) - 1 and per_fold.max() <= np.ceil(share) + 1, (c, per_fold)
    # a random split does worse on the rarest class: the stratified one is not chance
    rng = np.random.default_rng(0)
    spreads = [np.ptp(np.bincount(rng.integers(0, 5, 300)[labels[:, 5] == 1], minlength=5)) for _ in range(50)]
    assert np.ptp(np.bincount(fold_of[labels[:, 5] == 1], minlength=5)) <= np.median(spreads)


def test_too_few_rows_for_the_folds_is_refused():
    with pytest.raises(ValueError, match="folds must be in"):
        assign_folds(np.zeros((3, 2)), 4)


def label_file(folder, name, labels, classes=("a", "b", "c")):
    """A label CSV of `labels` with an image file per row (small PNGs, so the grid can draw them)."""
    os.makedirs(folder / "images", exist_ok=True)
    names = []
    for i in range(len(labels)):
        names.append(f"images/{name}-{i}.png")
        Image.new("RGB", (8, 8), (i * 7 % 256, 40, 90)).save(folder / names[-1])
    path = str(folder / f"{name}.csv")
    write_labels_csv(path, names, list(classes), labels)
    return path


def test_the_fold_plan_is_kept_and_other_labels_are_refused_or_moved_aside(tmp_path, capsys):
    labels = random_labels(40)[:, :3]
    pool = pool_tables([read_labels(label_file(tmp_path, "train", labels))])
    folder = str(tmp_path / "label-errors")
    first = fold_plan(folder, pool, 3, seed=0)
    assert np.array_equal(fold_plan(folder, pool, 3, seed=0), first)
    with pytest.raises(ConfigError, match="holds the folds of other labels or settings .*label_error_folds=3"):
        fold_plan(folder, pool, 4, seed=0)
    pool.labels[0, 0] = 1 - pool.labels[0, 0] if pool.labels[0, 0] != -1 else 1
    with pytest.raises(ConfigError, match="overwrite=True"):
        fold_plan(folder, pool, 3, seed=0)
    fold_plan(folder, pool, 3, seed=0, overwrite=True)
    assert "Moved the previous label-error folds" in capsys.readouterr().out
    assert any(name.startswith("label-errors.replaced-") for name in os.listdir(tmp_path))


def test_a_class_without_known_labels_and_too_few_images_get_one_line(tmp_path):
    labels = random_labels(40)[:, :3]
    labels[:, 1] = -1
    pool = pool_tables([read_labels(label_file(tmp_path, "train", labels))])
    with pytest.raises(LabelFileError, match="class 'b' has no known \\(1 or 0\\) label in any row"):
        check_pool(pool, 2, 8)
    pool.labels[:, 1] = 0
    with pytest.raises(ConfigError, match="label_error_folds=5 with 40 images .* each fold trains on the other 4 "
                                          "\\(32 images\\), fewer than batch_size=64"):
        check_pool(pool, 5, 64)
    check_pool(pool, 5, 32)


def test_a_finished_folds_probabilities_are_read_back_only_for_its_images(tmp_path):
    path = str(tmp_path / "heldout_probabilities.csv")
    probabilities = aligned_probabilities(["x", "y", "z"], ["z", "x"], np.array([[0.25, 0.5], [0.125, 1.0]]))
    assert np.isnan(probabilities[1]).all() and probabilities[2].tolist() == [0.25, 0.5]
    save_fold_probabilities(path, ["x", "y", "z"], ["a", "b"], probabilities)
    np.testing.assert_array_equal(load_fold_probabilities(path, ["x", "y", "z"], ["a", "b"]), probabilities)
    assert load_fold_probabilities(path, ["x", "y"], ["a", "b"]) is None
    assert load_fold_probabilities(str(tmp_path / "none.csv"), ["x"], ["a", "b"]) is None


# ------------------------------------------------------------------ ranking

def noisy_problem(rows=400, seed=0, share=0.05):
    """True labels, out-of-fold probabilities a fair model gives them, and labels with planted errors.

    Returns (noisy labels with some -1, probabilities, bool [rows, C] of the planted entries).
    """
    rng = np.random.default_rng(seed)
    true = (rng.random((rows, 5)) < np.array([0.5, 0.35, 0.25, 0.15, 0.1])).astype(np.int32)
    probabilities = np.clip(np.where(true == 1, 0.8, 0.12) + rng.normal(0, 0.12, true.shape), 0.01, 0.99)
    noisy = true.copy()
    planted = rng.random(true.shape) < share
    noisy[planted] = 1 - noisy[planted]
    unknown = ~planted & (rng.random(true.shape) < 0.1)
    unknown[:20, 0] = True  # unknown entries whose probability disagrees most must not be flagged either
    probabilities[:20, 0] = np.where(true[:20, 0] == 1, 0.01, 0.99)
    noisy[unknown] = -1
    planted &= ~unknown
    return noisy, probabilities, planted


def test_planted_errors_rank_above_clean_labels_and_unknown_ones_are_never_judged():
    noisy, probabilities, planted = noisy_problem()
    issues = find_label_issues(noisy, probabilities)
    ranking = ranked_entries(issues, flagged_only=False)
    count = int(planted.sum())
    top = ranking[:count]
    assert np.mean([planted[r, c] for r, c in top]) >= 0.8  # precision at the number planted
    flagged = ranked_entries(issues)
    assert np.mean([planted[r, c] for r, c in flagged]) >= 0.8 and len(flagged) >= 0.7 * count
    assert not issues.flagged[noisy == -1].any() and np.isnan(issues.scores[noisy == -1]).all()
    assert np.isfinite(issues.scores[noisy != -1]).all()
    assert len(ranking) == int((noisy != -1).sum())
    scores = [issues.scores[r, c] for r, c in flagged]
    assert scores == sorted(scores)  # most suspect first
    # cleanlab's moving average leans on an image's lowest class score: the worst image holds a planted error
    worst = int(np.argmin(issues.image_scores))
    assert planted[worst].any()


def near_universal_problem(rows=2000, planted_count=24, seed=0):
    """A class present in 95 % of the images, some of its positives planted as 0 with probabilities 0.9-0.999.

    Returns (labels with the planted 0s, out-of-fold probabilities, bool [rows, 2] of the planted entries).
    """
    rng = np.random.default_rng(seed)
    true = np.stack([rng.random(rows) < 0.95, rng.random(rows) < 0.3], axis=1).astype(np.int32)
    # A fair model: positives 0.95-0.9999 (mean ~0.975, confident learning's bar), negatives 0.01-0.2.
    probabilities = np.where(true == 1, 0.95 + 0.0499 * rng.random(true.shape), 0.01 + 0.19 * rng.random(true.shape))
    planted = np.zeros(true.shape, bool)
    chosen = rng.choice(np.flatnonzero(true[:, 0] == 1), planted_count, replace=False)
    planted[chosen, 0] = True
    probabilities[chosen, 0] = np.linspace(0.9, 0.999, planted_count)
    labels = true.copy()
    labels[planted] = 0
    return labels, probabilities, planted


def test_missing_labels_of_a_class_almost_every_image_has_rank_above_every_clean_entry(tmp_path):
    labels, probabilities, planted = near_universal_problem()
    issues = find_label_issues(labels, probabilities)
    # The case the listing is for: confident learning's bar for "present" sits near 1 here, so it leaves
    # some planted entries unflagged (were it to flag them all, this test would say nothing).
    assert 0 < issues.flagged[planted].sum() < planted.sum()
    suspects = suspect_entries(issues)
    of_class = [(r, c) for r, c in suspects if c == 0]
    assert {(r, 0) for r in np.flatnonzero(planted[:, 0])} <= set(of_class)
    full = [(r, c) for r, c in ranked_entries(issues, flagged_only=False) if c == 0]
    positions = {entry: i for i, entry in enumerate(full)}
    last_planted = max(positions[(r, 0)] for r in np.flatnonzero(planted[:, 0]))
    first_clean = min(i for (r, c), i in positions.items() if not planted[r, c])
    assert last_planted < first_clean  # every planted entry ranks above every clean entry of the class
    assert all(issues.flagged[r, c] or issues.scores[r, c] < SUSPECT_SCORE for r, c in suspects)
    scores = [issues.scores[r, c] for r, c in suspects]
    assert scores == sorted(scores)
    # The CSV lists them all, each with its flag; the corrected copies flip the flagged ones only.
    pool = pool_tables([read_labels(label_file(tmp_path, "train", labels, classes=("common", "other")))])
    path = str(tmp_path / "label_errors.csv")
    write_label_errors(path, pool, issues, probabilities, suspects)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    listed = {(pool.names.index(r["image"]), pool.class_names.index(r["class"])): r["flagged"] for r in rows}
    assert all((r, 0) in listed for r in np.flatnonzero(planted[:, 0]))
    assert {"yes", "no"} <= set(listed.values())
    assert all((value == "yes") == bool(issues.flagged[entry]) for entry, value in listed.items())


def test_the_score_is_the_probability_of_the_given_label():
    labels = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
    probabilities = np.array([[0.9, 0.2], [0.3, 0.6], [0.8, 0.1], [0.2, 0.7]])
    issues = find_label_issues(labels, probabilities)
    np.testing.assert_allclose(issues.scores, np.where(labels == 1, probabilities, 1 - probabilities))
    assert DIRECTIONS == {0: "likely missing", 1: "likely spurious"}


def test_a_class_with_one_label_value_is_scored_not_flagged_and_unread_images_are_left_out():
    labels = np.array([[1, 0], [1, 1], [1, 0], [1, 0]])
    probabilities = np.array([[0.05, 0.2], [0.9, 0.6], [np.nan, np.nan], [0.8, 0.9]])
    issues = find_label_issues(labels, probabilities)
    assert issues.unflagged_classes == [0] and not issues.flagged[:, 0].any()
    assert issues.scores[0, 0] == pytest.approx(0.05) and np.isnan(issues.scores[2]).all()
    assert issues.image_scores[2] == pytest.approx(1.0)


def test_planting_is_seeded_and_balanced():
    labels = random_labels(500)
    planted, entries = plant_errors(labels, 0.03, seed=2)
    again, same = plant_errors(labels, 0.03, seed=2)
    assert np.array_equal(planted, again) and np.array_equal(entries, same)
    count = int(round(0.03 * (labels == 1).sum()))
    assert len(entries) == 2 * count and len({tuple(e) for e in entries.tolist()}) == 2 * count
    assert (labels[entries[:, 0], entries[:, 1]] == 1).sum() == count  # as many removed as added
    assert (planted != labels).sum() == 2 * count and (planted[labels == -1] == -1).all()
    assert precision_recall([(0, 1), (2, 3)], {(0, 1), (5, 5)})[:2] == (0.5, 0.5)


def test_planting_writes_beside_the_original_and_never_over_a_file(tmp_path):
    path = label_file(tmp_path, "train", random_labels(100)[:, :3])
    output, entries = plant_label_file(path, 0.1, seed=0)
    assert output == str(tmp_path / "train.planted.csv")
    planted = read_labels(output)
    with open(entries) as f:
        rows = list(csv.DictReader(f))
    assert rows and all(planted.labels[planted.names.index(r["image"]), planted.class_names.index(r["class"])]
                        == int(r["planted"]) != int(r["original"]) for r in rows)
    with pytest.raises(LabelFileError, match="already exists"):
        plant_label_file(path, 0.1, seed=0)


def test_the_measurement_finds_planted_errors_that_a_fair_model_disagrees_with(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    true = random_labels(200, seed=3)[:, :4]
    true[true == -1] = 0
    path = label_file(tmp_path, "train", true, classes=("a", "b", "c", "d"))
    assert main(["plant", path, "--fraction", "0.05", "--seed", "1"]) == 0
    pool = pool_tables([read_labels(str(tmp_path / "train.planted.csv"))])
    rng = np.random.default_rng(0)
    probabilities = np.clip(np.where(true == 1, 0.85, 0.1) + rng.normal(0, 0.08, true.shape), 0.01, 0.99)
    folder = tmp_path / "label-errors"
    issues = find_label_issues(pool.labels, probabilities)
    write_label_errors(str(folder / "label_errors.csv"), pool, issues, probabilities, ranked_entries(issues))
    (folder / "probabilities.csv").write_text(probabilities_csv(pool.names, pool.class_names, probabilities,
                                                                [pool.source(r) for r in range(len(pool))]))
    capsys.readouterr()
    assert main(["measure", str(tmp_path / "train.planted_entries.csv"), str(folder)]) == 0
    out = capsys.readouterr().out
    top = re.search(r"top (\d+) of the ranking: (\d+) planted: precision ([\d.]+)", out)
    assert top and int(top[1]) == 2 * round(0.05 * true.sum()) and float(top[3]) >= 0.8, out
    assert main(["measure", str(tmp_path / "train.planted_entries.csv"), str(tmp_path)]) == 2  # no label_errors.csv


# ------------------------------------------------------------------ outputs

def ranked_pool(tmp_path):
    noisy, probabilities, _ = noisy_problem(rows=60, seed=1, share=0.1)
    noisy = noisy[:, :3]
    probabilities = probabilities[:, :3]
    pool = pool_tables([read_labels(label_file(tmp_path, "train", noisy[:40])),
                        read_labels(label_file(tmp_path, "val", noisy[40:]))])
    issues = find_label_issues(pool.labels, probabilities)
    return pool, issues, probabilities, suspect_entries(issues)


def test_label_errors_csv_lists_the_suspect_entries_ranked_with_their_flags(tmp_path):
    pool, issues, probabilities, ranked = ranked_pool(tmp_path)
    path = str(tmp_path / "label_errors.csv")
    write_label_errors(path, pool, issues, probabilities, ranked)
    with open(path) as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == COLUMNS and len(rows) == len(ranked) >= int(issues.flagged.sum()) > 0
    assert sum(r["flagged"] == "yes" for r in rows) == int(issues.flagged.sum())
    assert all(r["flagged"] == "yes" or float(r["score"]) < SUSPECT_SCORE for r in rows)
    assert [float(r["score"]) for r in rows] == sorted(float(r["score"]) for r in rows)
    for r in rows:
        assert r["direction"] == DIRECTIONS[int(r["label"])]
        row = pool.names.index(r["image"])  # the names of both files differ (train-<i>, val-<i>)
        assert pool.source(row) == r["label_file"]
        assert pool.labels[row, pool.class_names.index(r["class"])] == int(r["label"])
    assert {r["label_file"] for r in rows} <= {str(tmp_path / "train.csv"), str(tmp_path / "val.csv")}


def test_the_image_grid_is_written(tmp_path):
    pool, _, probabilities, ranked = ranked_pool(tmp_path)
    path = tmp_path / "label_errors.png"
    draw_suspects(str(path), pool, probabilities, ranked, 6)
    with Image.open(path) as image:
        assert image.size[0] > 200 and image.size[1] > 100


def test_corrected_files_flip_the_flagged_entries_beside_each_original_and_never_overwrite(tmp_path):
    pool, issues, _, _ = ranked_pool(tmp_path)
    originals = {name: (tmp_path / f"{name}.csv").read_text() for name in ("train", "val")}
    first = write_corrected_files(pool, issues.flagged)
    second = write_corrected_files(pool, issues.flagged)
    assert [p for p, _ in first] == [str(tmp_path / "train.corrected.csv"), str(tmp_path / "val.corrected.csv")]
    assert [p for p, _ in second] == [str(tmp_path / "train.corrected-2.csv"), str(tmp_path / "val.corrected-2.csv")]
    assert {name: (tmp_path / f"{name}.csv").read_text() for name in originals} == originals
    assert sum(flips for _, flips in first) == int(issues.flagged.sum())
    corrected = np.concatenate([read_labels(p).labels for p, _ in first])
    assert read_labels(first[0][0]).images == pool.tables[0].images  # the images are found from the copy
    np.testing.assert_array_equal(corrected != pool.labels, issues.flagged)
    assert (corrected[pool.labels == -1] == -1).all()


# ------------------------------------------------------------------ settings

def test_find_label_errors_settings_are_checked_at_load_time():
    with pytest.raises(ConfigError, match="label_error_folds=1 .*an integer >= 2"):
        load_config(["mode='find_label_errors'", "label_error_folds=1"])
    with pytest.raises(ConfigError, match="label_error_epochs=0 .*None"):
        load_config(["mode='find_label_errors'", "label_error_epochs=0"])
    assert load_config(["mode='find_label_errors'", "label_error_epochs=2"]).label_error_epochs == 2


def test_label_error_settings_do_not_block_resuming_a_training_run():
    from utils.run_folder import changed_settings

    saved = {"epochs": 8, "label_error_folds": 5, "label_error_epochs": None, "label_error_examples": 16}
    assert changed_settings(saved, {**saved, "label_error_folds": 3, "label_error_epochs": 2,
                                    "label_error_examples": 0, "mode": "find_label_errors"}) == []


# ------------------------------------------------------------------ whole runs through run.py

# 112 + 16 pooled demo images (TINY) in 2 folds of about 64: 4 steps of 16 per fold epoch
ARGS = ["mode='find_label_errors'", "run_name='r'", "label_error_folds=2", "label_error_epochs=1",
        "label_error_examples=4", "warmup_epochs=0.5"]


def output_of(result):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def output_in_process(folder, *args):
    """What run.py prints with the TINY settings and `args`, run in this process (no TensorFlow start to pay)."""
    status, output = run_in_process(folder, *TINY, *args)
    assert status == 0, output[-3000:]
    return output


@pytest.mark.slow  # two runs of two tiny folds by run.py in process: about a minute on 2 cores
def test_a_run_writes_its_outputs_and_a_rerun_skips_the_finished_folds(tmp_path):
    out = output_in_process(tmp_path, *ARGS)
    folder = tmp_path / "models" / "r" / "label-errors"
    sizes = [int(n) for n in re.findall(r"fold \d/2: training on (\d+) images for 1 epoch, then predicting", out)]
    assert len(sizes) == 2 and sum(sizes) == 128 and min(sizes) >= 60  # each fold trains on the other's images
    for name in ("label_errors.csv", "label_errors.png", "probabilities.csv", "folds.json",
                 "fold-1/heldout_probabilities.csv", "fold-2/heldout_probabilities.csv", "fold-1/best.keras"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "folds.json").read_text())["folds"] == 2
    for name in ("train", "val"):
        assert f"Wrote data/demo/{name}.corrected.csv" in out
    with open(folder / "label_errors.csv") as f:
        assert tuple(csv.DictReader(f).fieldnames) == COLUMNS
    again = output_in_process(tmp_path, *ARGS)
    assert "fold 1/2: finished before" in again and "fold 2/2: finished before" in again
    assert "Training " not in again and "Wrote data/demo/train.corrected-2.csv" in again


@pytest.mark.slow  # a run killed in its second fold and resumed through run.py: about a minute on 2 cores
def test_a_killed_fold_resumes_from_its_backup(tmp_path):
    args = [*ARGS[:3], "label_error_epochs=2", "label_error_examples=0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *TINY, *args], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pointer = tmp_path / "models" / "r" / "label-errors" / "fold-2" / "backup" / "latest"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None and not pointer.is_file():
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert pointer.is_file(), "the second fold never backed up an epoch"
    out = output_of(run(tmp_path, *args))
    assert "fold 1/2: finished before" in out
    assert "Resuming from the backup after epoch 1" in out and "Finished 2 of 2 epochs" in out
    assert (tmp_path / "models" / "r" / "label-errors" / "label_errors.csv").is_file()
