"""Thresholds and temperature fitted on validation, saved beside the model, and applied at test/predict."""

import dataclasses
import json
import os

import numpy as np
import pytest
from conftest import run_in_process
from tiny_run import save_tiny_model, tiny_config

from dataset.pipeline import make_dataset
from dataset.run_splits import load_split
from multi_label.calibration import fit_and_save_calibration, load_calibration
from multi_label.evaluation.inference import predict_dataset, sigmoid
from multi_label.evaluation.metrics import binarize
from multi_label.evaluation.thresholds import fit_temperature, fit_thresholds, save_thresholds
from multi_label.tasks.settings import pipeline_settings, split_settings
from utils.config import ConfigError


def fit(config, path):
    """Fits and saves the calibration of the model at `path` as training does, on the config's val_labels."""
    val = load_split(split_settings(config), "val_labels")
    return fit_and_save_calibration(path, val, pipeline_settings(config), threshold=config.threshold)


def calibration(config, path, names):
    """The Calibration that test and predict would use with `config`."""
    return load_calibration(path, names, class_thresholds=config.class_thresholds, threshold=config.threshold,
                            temperature_scaling=config.temperature_scaling)


def val_names(config):
    return load_split(split_settings(config), "val_labels").class_names


@pytest.fixture
def fitted(data_dir, tmp_path):
    config = tiny_config(data_dir)
    path, model = save_tiny_model(config, tmp_path / "run")
    info = fit(config, path)
    return config, path, model, info


def test_fit_saves_the_validation_optimum_by_class_name(fitted):
    config, path, model, info = fitted
    table = load_split(split_settings(config), "val_labels")
    dataset = make_dataset(table.images, table.labels, pipeline_settings(config), training=False)
    logits, labels, _ = predict_dataset(model, dataset)
    folder = os.path.dirname(path)
    saved = json.loads(open(os.path.join(folder, "thresholds.json")).read())["thresholds"]
    assert list(saved) == table.class_names
    np.testing.assert_allclose(list(saved.values()), fit_thresholds(labels, sigmoid(logits)), rtol=1e-6)
    calibration = json.loads(open(os.path.join(folder, "calibration.json")).read())
    assert calibration == info
    assert calibration["temperature"] == pytest.approx(fit_temperature(labels, logits), rel=1e-4)
    assert calibration["val_images"] == len(table) and calibration["checkpoint"] == "best.keras"
    # on the data they were fitted on, no class's F1 is below its F1 at the fixed threshold
    probabilities = sigmoid(logits)
    assert np.all(class_f1(labels, binarize(probabilities, list(saved.values())))
                  >= class_f1(labels, binarize(probabilities, config.threshold)) - 1e-12)


def class_f1(labels, predicted):
    tp = np.sum(predicted & (labels == 1), axis=0)
    return 2 * tp / np.maximum(np.sum(predicted & (labels != -1), axis=0) + np.sum(labels == 1, axis=0), 1)


def test_load_uses_fitted_or_fixed_as_configured(fitted):
    config, path, _, _ = fitted
    saved = list(json.loads(open(os.path.join(os.path.dirname(path), "thresholds.json")).read())["thresholds"].values())
    names = val_names(config)
    used = calibration(config, path, names)
    assert used.kind == "fitted" and np.allclose(used.thresholds, saved) and used.temperature is None
    fixed = calibration(dataclasses.replace(config, class_thresholds="fixed", threshold=0.3), path, names)
    assert fixed.kind == "fixed" and np.all(fixed.thresholds == 0.3) and np.allclose(fixed.fitted, saved)


def test_temperature_scales_probabilities_not_fitted_decisions(fitted):
    config, path, _, info = fitted
    names = val_names(config)
    plain = calibration(config, path, names)
    scaled = calibration(dataclasses.replace(config, temperature_scaling=True), path, names)
    assert scaled.temperature == pytest.approx(info["temperature"])
    # logits large enough that sigmoid(logits / T) saturates to 1.0 for T < 1
    logits = np.random.default_rng(1).normal(0, 30, (400, len(names)))
    np.testing.assert_allclose(scaled.probabilities(logits), sigmoid(logits / info["temperature"]))
    assert np.array_equal(scaled.predict(logits), binarize(sigmoid(logits), plain.thresholds))
    assert np.array_equal(plain.predict(logits), scaled.predict(logits))
    fixed = dataclasses.replace(config, temperature_scaling=True, class_thresholds="fixed", threshold=0.7)
    fixed = calibration(fixed, path, names)  # a fixed threshold applies to the calibrated probabilities
    assert np.array_equal(fixed.predict(logits), sigmoid(logits / info["temperature"]) >= 0.7)


def test_missing_or_stale_thresholds_fall_back_to_fixed_with_a_note(fitted, capsys):
    config, path, model, _ = fitted
    names = val_names(config)
    # another model in the same file: saving the same weights again within the same second gives the same bytes
    # (the .keras metadata records the time to the second), so change a weight first
    kernel = model.trainable_weights[0]
    kernel.assign(kernel + 0.01)
    model.save(path)
    stale = calibration(config, path, names)
    assert stale.kind == "fixed" and stale.fitted is None and np.all(stale.thresholds == config.threshold)
    assert "was fitted for another model file" in capsys.readouterr().out
    for name in ("thresholds.json", "calibration.json"):
        os.remove(os.path.join(os.path.dirname(path), name))
    missing = calibration(config, path, names)
    assert missing.kind == "fixed"
    assert "thresholds.json not found" in capsys.readouterr().out


def test_unreadable_thresholds_file_is_one_clear_error(fitted):
    config, path, _, _ = fitted
    names = val_names(config)
    os.remove(os.path.join(os.path.dirname(path), "calibration.json"))
    save_thresholds(os.path.join(os.path.dirname(path), "thresholds.json"), ["other"] * 1, [0.5])
    with pytest.raises(ConfigError, match="thresholds.json: class names differ"):
        calibration(config, path, names)


def test_no_validation_split_fits_nothing(data_dir, tmp_path, capsys):
    config = tiny_config(data_dir, val_labels="")
    path, _ = save_tiny_model(config, tmp_path / "run")
    assert fit(config, path) is None
    assert "no per-class thresholds fitted (val_labels is empty)" in capsys.readouterr().out
    assert not os.path.exists(tmp_path / "run" / "thresholds.json")


def test_training_run_fits_thresholds_and_test_reports_both_cf1(data_dir, tmp_path):
    config = tiny_config(data_dir)
    args = [f"{k}={getattr(config, k)}" for k in ("train_labels", "val_labels", "test_labels")]
    args += ["image_size=32", "backbone_width=0.125", "batch_size=8", "shuffle_buffer=16", "epochs=1",
             "run_name=cal", "report=False", "lr_schedule=constant"]
    status, output = run_in_process(tmp_path, *args)  # run.py's work, without a subprocess's TensorFlow start
    assert status == 0, output[-3000:]
    run_dir = tmp_path / "models" / "cal"
    assert (run_dir / "thresholds.json").is_file() and (run_dir / "calibration.json").is_file()
    assert "Fitted per-class thresholds on 6 validation images" in output
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["thresholds_in_use"] == "fitted"
    assert f"Test CF1 at the fixed threshold 0.5: {metrics['at_fixed_threshold']['CF1']:.4f}" in output
    assert (f"Test CF1 at per-class thresholds fitted on validation: {metrics['at_fitted_thresholds']['CF1']:.4f}"
            in output)
    assert not (run_dir / "report").exists()
