"""Tests for multi_label/evaluation/thresholds.py: F1 thresholds against brute force, file round trip, temperature."""

import json
import os

import numpy as np
import pytest

from multi_label.evaluation.thresholds import (
    DEFAULT_THRESHOLD,
    apply_temperature,
    fit_temperature,
    fit_thresholds,
    load_thresholds,
    save_thresholds,
)


def tied_data(seed, num_images=60, num_classes=8):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random((num_images, num_classes)), 1)
    targets = (rng.random((num_images, num_classes)) < 0.3).astype(int)
    targets[rng.random((num_images, num_classes)) < 0.1] = -1
    targets[:, 0] = np.where(targets[:, 0] == 1, 0, targets[:, 0])  # a class with no positive
    return targets, scores


def f1_at(y, s, threshold):
    predicted = s >= threshold
    positives = (y == 1).sum()
    return 2 * (predicted & (y == 1)).sum() / (positives + predicted.sum())


def brute_force_best_f1(y, s):
    """Best F1 over every distinct score as threshold, plus predicting nothing."""
    return max(f1_at(y, s, t) for t in list(np.unique(s)) + [np.inf])


@pytest.mark.parametrize("seed", range(5))
def test_fitted_thresholds_reach_the_brute_force_best_f1(seed):
    targets, scores = tied_data(seed)
    thresholds = fit_thresholds(targets, scores)
    assert thresholds[0] == DEFAULT_THRESHOLD
    for c in range(1, targets.shape[1]):
        valid = targets[:, c] != -1
        y, s = targets[valid, c], scores[valid, c]
        fitted = f1_at(y, s, thresholds[c])
        assert fitted == pytest.approx(brute_force_best_f1(y, s), abs=1e-12)
        assert fitted >= f1_at(y, s, 0.5) - 1e-12


def test_threshold_is_the_midpoint_below_the_winning_score():
    scores = np.array([[0.9], [0.8], [0.4], [0.3], [0.1]])
    targets = np.array([[1], [1], [0], [-1], [0]])  # -1 at 0.3: the next valid score is 0.1
    # Best F1 (= 1) is reached by selecting 0.9 and 0.8; the next lower valid score is 0.4.
    assert fit_thresholds(targets, scores)[0] == pytest.approx(0.6)
    targets = np.array([[1], [1], [0], [-1], [1]])  # best: select everything, no lower score
    assert fit_thresholds(targets, scores)[0] == pytest.approx(0.1)


def test_thresholds_file_round_trip_by_name(tmp_path):
    path = tmp_path / "thresholds.json"
    names = ["cat", "dog", "car"]
    save_thresholds(str(path), names, [0.3, 0.5, 0.7])
    assert os.listdir(tmp_path) == ["thresholds.json"]  # no temporary file left behind
    assert json.loads(path.read_text())["thresholds"] == {"cat": 0.3, "dog": 0.5, "car": 0.7}
    np.testing.assert_array_equal(load_thresholds(str(path), ["car", "cat", "dog"]), [0.7, 0.3, 0.5])
    with pytest.raises(ValueError, match="thresholds.json.*Missing from the file: \\['bird'\\]"):
        load_thresholds(str(path), ["cat", "dog", "bird"])
    with pytest.raises(ValueError, match="one value per class"):
        save_thresholds(str(path), names, [0.3, 0.5])
    with pytest.raises(ValueError, match="finite"):
        save_thresholds(str(path), names, [0.3, np.nan, 0.5])


def test_load_names_a_broken_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        load_thresholds(str(path), ["cat"])


@pytest.mark.parametrize("true_temperature", [0.5, 2.5])
def test_fit_temperature_recovers_a_known_temperature(true_temperature):
    rng = np.random.default_rng(0)
    calibrated = rng.normal(0.0, 2.0, size=(20000, 10))
    targets = (rng.random(calibrated.shape) < 1 / (1 + np.exp(-calibrated))).astype(int)
    targets[rng.random(calibrated.shape) < 0.05] = -1
    logits = calibrated * true_temperature  # a model over- (T > 1) or under-confident (T < 1)
    temperature = fit_temperature(targets, logits)
    assert temperature == pytest.approx(true_temperature, rel=0.03)
    # the optimum, not just near the truth: no temperature of a fine grid around it does better
    known = targets != -1
    def bce(t):
        z = logits[known] / t
        return np.mean(np.logaddexp(0, z) - targets[known] * z)
    grid = temperature * np.exp(np.linspace(-0.05, 0.05, 201))
    assert bce(temperature) <= min(bce(t) for t in grid) + 1e-12
    np.testing.assert_allclose(apply_temperature(logits, temperature), logits / temperature)


def test_degenerate_inputs():
    assert fit_temperature(-np.ones((3, 2), dtype=int), np.zeros((3, 2))) == 1.0
    np.testing.assert_array_equal(fit_thresholds(np.zeros((0, 2), dtype=int), np.zeros((0, 2))), [0.5, 0.5])
    np.testing.assert_array_equal(fit_thresholds(np.array([[1, -1]]), np.array([[0.3, 0.9]])), [0.3, 0.5])


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_apply_temperature_rejects_bad_values(temperature):
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(np.zeros((2, 2)), temperature)
