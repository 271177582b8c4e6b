"""Predict mode: folders, single images and label files in; labels and probabilities out; bad files named."""

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image
from tiny_run import save_tiny_model, tiny_config

from dataset.run_splits import load_split
from multi_label.calibration import fit_and_save_calibration
from multi_label.tasks.predict import collect_inputs, run_predict
from multi_label.tasks.settings import pipeline_settings, split_settings
from multi_label.tasks.test import run_test
from utils.config import ConfigError, load_config


@pytest.fixture
def photos(data_dir, tmp_path):
    """A folder tree: 3 readable images (one upper-case .JPG, one .png in a subfolder), a corrupt .jpg, a text file."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(data_dir / "test" / "00000.jpg", folder / "a.jpg")
    shutil.copy(data_dir / "test" / "00001.jpg", folder / "B.JPG")
    Image.open(data_dir / "test" / "00002.jpg").save(folder / "sub" / "c.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "notes.txt").write_text("not an image")
    return folder


def read_csv(path):
    with open(path) as f:
        return list(csv.reader(f))


def test_folder_with_a_corrupt_file_through_run_py(data_dir, photos, tmp_path):
    config = tiny_config(data_dir)
    path, _ = save_tiny_model(config, tmp_path / "models" / "tiny")
    args = ["mode=predict", f"checkpoint={path}", f"input={photos}", "output=labels.csv", "image_size=32",
            "train_labels=''", "val_labels=''", "test_labels=''"]
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "warning: skipped unreadable image (failed to read or decode): broken.jpg" in result.stdout
    assert "note: skipped 1 non-image file in" in result.stdout and "notes.txt" in result.stdout
    assert "note: class_thresholds='fitted' but" in result.stdout  # no thresholds.json: fixed 0.5, said so
    rows = read_csv(tmp_path / "labels.csv")
    assert rows[0][:2] == ["image", "labels"] and rows[0][2:] == json.load(open(tmp_path / "models/tiny/classes.json"))
    assert [row[0] for row in rows[1:]] == ["B.JPG", "a.jpg", "sub/c.png"]
    for row in rows[1:]:
        probabilities = np.array([float(v) for v in row[2:]])
        assert row[1] == ";".join(name for name, p in zip(rows[0][2:], probabilities) if p >= 0.5)


def test_label_file_input_matches_test_mode_and_json_uses_fitted_thresholds(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tiny_config(data_dir, class_thresholds="fixed")
    path, _ = save_tiny_model(config, "models/tiny")
    run_test(dataclasses.replace(config, report=False))
    tested = read_csv("models/tiny/predictions.csv")
    run_predict(dataclasses.replace(config, input=config.test_labels, output="out.csv"))
    predicted = read_csv("out.csv")
    assert [row[0] for row in predicted] == [row[0] for row in tested]
    np.testing.assert_allclose(np.array([r[2:] for r in predicted[1:]], float),
                               np.array([r[1:] for r in tested[1:]], float), atol=2e-6)

    val = load_split(split_settings(config), "val_labels")
    fit_and_save_calibration(path, val, pipeline_settings(config), threshold=config.threshold)
    thresholds = json.load(open("models/tiny/thresholds.json"))["thresholds"]
    run_predict(dataclasses.replace(config, class_thresholds="fitted", input=config.test_labels, output="out.json"))
    document = json.load(open("out.json"))
    assert document["thresholds_kind"] == "fitted" and document["skipped"] == []
    assert document["thresholds"] == pytest.approx(thresholds)
    assert len(document["predictions"]) == 12
    for item in document["predictions"]:
        expected = [name for name, p in item["probabilities"].items() if p >= thresholds[name]]
        borderline = [name for name, p in item["probabilities"].items() if abs(p - thresholds[name]) < 1e-6]
        assert set(item["labels"]) ^ set(expected) <= set(borderline)  # JSON rounds to 6 decimals


def test_single_image_and_default_output(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = tiny_config(data_dir)
    path, _ = save_tiny_model(config, "models/tiny")
    image = str(data_dir / "test" / "00003.jpg")
    run_predict(dataclasses.replace(config, input=image))
    written = os.path.join("models", "tiny", "predict.csv")
    assert capsys.readouterr().out.rstrip().endswith(f"; wrote {written}")
    rows = read_csv(written)
    assert len(rows) == 2 and rows[1][0] == image


def test_collect_inputs_recurses_and_skips_other_files(photos, capsys):
    files, names = collect_inputs(str(photos), class_names=["x"])
    assert names == ["B.JPG", "a.jpg", "broken.jpg", "sub/c.png"]
    assert files == [os.path.join(str(photos), *n.split("/")) for n in names]
    assert "notes.txt" in capsys.readouterr().out


def test_bad_inputs_are_one_clear_error(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tiny_config(data_dir)
    path, _ = save_tiny_model(config, "models/tiny")
    with pytest.raises(ConfigError, match=r"^input is empty; mode=predict needs input="):
        run_predict(config)
    with pytest.raises(ConfigError, match=r"^input='nowhere': not found; expected an image, a folder"):
        run_predict(dataclasses.replace(config, input="nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"^input='empty': no image files"):
        run_predict(dataclasses.replace(config, input="empty"))
    os.remove("models/tiny/classes.json")
    with pytest.raises(ConfigError, match=r"no classes.json beside it"):
        run_predict(dataclasses.replace(config, input="empty"))
    with pytest.raises(ConfigError, match=r"^output='x.txt' is out of range; expected \"\" or a file name ending"):
        load_config(["output=x.txt"])


def test_checkpoint_of_another_head_stops_before_reading_any_input(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    groups = tiny_config(data_dir, head="groups", groups={"pos1": 10, "pos2": 10})
    # a groups checkpoint with settings that do not say so: named before the (missing) input is looked at
    path, _ = save_tiny_model(groups, "models/tiny", class_names=["pos1", "pos2"])
    with pytest.raises(ConfigError, match=rf"^checkpoint={path!r} has a head='groups' \(one softmax per group\), not "
                                          r"2 sigmoid outputs; use it with head='groups' and its groups$"):
        run_predict(tiny_config(data_dir, input="missing.csv"))
    # and the other way round: a sigmoid checkpoint with head='groups'
    path, _ = save_tiny_model(tiny_config(data_dir), "models/tiny")
    with pytest.raises(ConfigError, match=rf"^checkpoint={path!r} has one sigmoid output per class \(10\), not "
                                          r"head='groups' \(one softmax per group\); use it with the head it was "
                                          r"trained with$"):
        run_predict(dataclasses.replace(groups, input="missing.csv"))
