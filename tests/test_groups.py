"""The groups head: per-group accuracy and confusion matrices ignoring -1, the dict-output model
with its losses, and training + testing on the demo variant with one attribute per digit position."""

import csv
import dataclasses
import json

import keras
import numpy as np
import tensorflow as tf

from configs import Config
from multi_label.evaluation.group_metrics import confusion_matrix, evaluate_groups, group_accuracy, group_targets
from multi_label.losses import build_group_losses
from multi_label.model import build_model
from multi_label.tasks.settings import loss_settings, model_settings


def test_accuracy_and_confusion_matrix_ignore_unknown_labels():
    labels = np.array([0, 2, -1, 1, 2, -1])
    logits = np.array([[5, 0, 0], [0, 0, 3], [9, 0, 0], [1, 0, 0], [0, 4, 0], [0, 0, 1]], float)
    assert group_accuracy(labels, logits) == 2 / 4
    np.testing.assert_array_equal(confusion_matrix(labels, logits, 3), [[1, 0, 0], [1, 0, 0], [0, 1, 1]])
    assert group_accuracy([-1, -1], logits[:2]) is None
    assert confusion_matrix([-1], logits[:1], 3).sum() == 0


def test_evaluate_groups_means_over_groups_with_known_labels():
    labels = np.array([[0, -1, 1], [1, -1, 1], [1, -1, 0]])
    logits = {"a": np.array([[1, 0], [0, 1], [1, 0]]), "b": np.zeros((3, 2)), "c": np.array([[0, 1]] * 3)}
    result = evaluate_groups(labels, logits, {"a": 2, "b": 2, "c": 2})
    assert result["groups"]["a"] == {"accuracy": 2 / 3, "known": 3, "confusion_matrix": [[1, 0], [1, 1]]}
    assert result["groups"]["b"]["accuracy"] is None and result["groups"]["b"]["known"] == 0
    assert result["accuracy"] == (2 / 3 + 2 / 3) / 2


def test_group_model_trains_with_one_loss_per_group():
    groups = {"pos1": 10, "pos2": 10}
    config = dataclasses.replace(Config(), head="groups", groups=groups, backbone_width=0.125)
    model = build_model(model_settings(config), len(groups))
    assert len(model.outputs) == 2
    model.compile(optimizer="adam", loss=build_group_losses(loss_settings(config), groups))
    labels = np.array([[3, -1], [7, 2], [0, -1], [9, 9]], np.int32)
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    dataset = group_targets(tf.data.Dataset.from_tensor_slices((images, labels)).batch(2), list(groups))
    history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
    assert {"pos1_loss", "pos2_loss"} <= set(history.history)
    outputs = model.predict_on_batch(images)
    assert {k: v.shape for k, v in outputs.items()} == {"pos1": (4, 10), "pos2": (4, 10)}


def test_train_and_test_on_the_digit_position_demo(groups_run):
    folder, output = groups_run  # run.py, in process: demo_images=60, 1 epoch (conftest.GROUPS_RUN)
    assert "val_accuracy = " in output and "Test accuracy (mean over groups): " in output
    for group in ("pos1", "pos2", "pos3", "pos4"):
        assert f"\n{group}: accuracy " in output
    assert "true\\pred   0   1   2   3   4   5   6   7   8   9" in output
    run_dir = folder / "models" / "groups"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["images"] == 12 and 0 <= metrics["accuracy"] <= 1
    with open(folder / "data" / "demo" / "test_groups.csv") as f:
        rows = list(csv.DictReader(f))
    for group in ("pos1", "pos2", "pos3", "pos4"):
        matrix = np.array(metrics["groups"][group]["confusion_matrix"])
        known = sum(int(row[group]) >= 0 for row in rows)
        assert matrix.shape == (10, 10) and matrix.sum() == known == metrics["groups"][group]["known"]
    assert metrics["groups"]["pos1"]["known"] == 12  # every image has a first digit
    with open(run_dir / "confusion_matrices.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert json.loads((run_dir / "best.json").read_text())["monitor"] == "val_accuracy"
    with open(run_dir / "history.csv") as f:
        assert "val_accuracy" in next(csv.reader(f))
    with open(run_dir / "predictions.csv") as f:
        header = next(csv.reader(f))
    assert header == ["image", "pos1", "pos1_probability", "pos2", "pos2_probability", "pos3", "pos3_probability",
                      "pos4", "pos4_probability"]
    loaded = keras.saving.load_model(str(run_dir / "best.keras"), safe_mode=True, compile=False)
    assert sorted(loaded.output_names) == ["logits_pos1", "logits_pos2", "logits_pos3", "logits_pos4"]
