"""The long-tailed demo (demo_long_tail), the guard on a demo folder built with other settings, and the mAP of
the rarest training classes that the measurement reads."""

import csv

import numpy as np
import pytest

from dataset.demo import CLASS_NAMES, build_demo_data, digit_weights, ensure_demo_data
from dataset.labels import read_labels
from multi_label.evaluation.report import rarest_classes_map
from utils.config import ConfigError


def test_digit_weights_fall_off_geometrically_to_the_ratio():
    weights = digit_weights(20.0)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[0] / weights[9] == pytest.approx(20.0)
    np.testing.assert_allclose(weights[1:] / weights[:-1], 20.0 ** (-1 / 9))
    np.testing.assert_allclose(digit_weights(1.0), 0.1)


def drawn_digits(path):
    """How often each digit was placed, from the groups file (one digit per position)."""
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    digits = [int(v) for row in rows for v in row[1:] if int(v) >= 0]
    return np.bincount(digits, minlength=10)


def test_the_train_split_is_long_tailed_and_val_and_test_stay_balanced(tmp_path):
    paths = build_demo_data(str(tmp_path), 1000, seed=0, groups=True, long_tail=20.0)
    train = drawn_digits(tmp_path / "train_groups.csv")
    assert 10 < train[0] / train[9] < 40, train  # 20:1 drawn
    assert np.all(np.diff(train[[0, 3, 6, 9]]) < 0), train
    for split in ("val", "test"):
        counts = drawn_digits(tmp_path / f"{split}_groups.csv")
        assert counts.max() / counts.min() < 3, (split, counts)
    present = read_labels(paths["train"]).labels.sum(0)  # images that contain each digit: also falling off
    assert present[0] > 4 * present[9], present


def test_a_folder_built_with_other_demo_settings_is_refused(tmp_path, capsys):
    folder = tmp_path / "demo"
    files = [str(folder / "train.csv"), str(folder / "val.csv")]
    ensure_demo_data(files, str(folder), 20, seed=0, long_tail=5.0)
    assert f"Building the demo data in {folder} (20 images, seed 0, long tail 5:1)" in capsys.readouterr().out
    ensure_demo_data(files, str(folder), 20, seed=7, long_tail=5.0)  # the same data: another seed may share it
    assert "Building" not in capsys.readouterr().out
    with pytest.raises(ConfigError) as info:  # a long tail asked for that the folder does not hold
        ensure_demo_data(files, str(folder), 20, seed=0, long_tail=2.0)
    assert str(info.value) == (f"demo_data_dir={str(folder)!r} holds demo data built with demo_long_tail=5.0, not "
                               "demo_images=20, demo_long_tail=2.0; set demo_data_dir (and the label files) to another "
                               "folder, or delete this one")
    # Complete data with other settings serves a mode that does not repeat them (test, convert): a note.
    ensure_demo_data(files, str(folder), 30000, seed=0)
    assert capsys.readouterr().out == (f"note: demo_data_dir={str(folder)!r} holds demo data built with "
                                       "demo_images=20, demo_long_tail=5.0; using it as it is\n")
    with pytest.raises(ConfigError, match="built with demo_images=20, not demo_images=30"):  # files to build
        ensure_demo_data(files + [str(folder / "extra.csv")], str(folder), 30, seed=0, long_tail=5.0)
    (folder / "demo.json").unlink()  # a folder built before demo.json was written: taken as it is
    ensure_demo_data(files, str(folder), 30, seed=0)
    ensure_demo_data([str(tmp_path / "mine.csv")], str(folder), 30, seed=0)  # not the demo's files: not checked


def test_rarest_classes_map_averages_the_classes_rarest_in_training():
    train = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, -1, 1], [1, 1, 0, -1]])  # positives 4, 3, 1, 1
    ap = {"a": 0.9, "b": 0.8, "c": 0.2, "d": None}  # d: no test positive
    rare, mean = rarest_classes_map(ap, ["a", "b", "c", "d"], train, count=2)
    assert rare == [("c", 1), ("b", 3)] and mean == pytest.approx(0.5)
    assert rarest_classes_map({"a": None}, ["a"], train[:, :1], count=5) == ([], None)
    assert len(CLASS_NAMES) == 10
