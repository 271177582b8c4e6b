"""Tests for multi_label/evaluation/metrics.py and class_rankings.py against scikit-learn and plain-loop references."""

import json

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    roc_auc_score,
)
from sklearn.metrics import (
    hamming_loss as sk_hamming_loss,
)

from multi_label.evaluation import class_rankings
from multi_label.evaluation.metrics import (
    average_precision,
    binarize,
    evaluate_all,
    example_f1,
    hamming_loss,
    mean_average_precision,
    multilabel_scores,
    roc_auc,
    subset_accuracy,
)

PUBLISHED_SCORES = np.array([[0.9, 0.8, 0.3, 0.2], [0.1, 0.2, 0.2, 0.1], [0.7, 0.5, 0.9, 0.3], [0.8, 0.1, 0.1, 0.2]])
PUBLISHED_TARGETS = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0]])


def tied_data(seed, num_images=120, num_classes=12, unknown=0.1):
    """Scores rounded to one decimal (many ties), ~25% positives, some -1 and degenerate columns."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random((num_images, num_classes)), 1)
    targets = (rng.random((num_images, num_classes)) < 0.25).astype(np.int64)
    targets[rng.random((num_images, num_classes)) < unknown] = -1
    targets[:, 0] = np.where(targets[:, 0] == 1, 0, targets[:, 0])  # no positive
    targets[:, 1] = np.where(targets[:, 1] == 0, 1, targets[:, 1])  # no negative
    targets[:, 2] = -1  # nothing known
    return targets, scores


@pytest.fixture(params=[None, 50], ids=["one-block", "many-blocks"])
def block_entries(request, monkeypatch):
    """Runs a test as is and again with blocks of a few classes, to cover block boundaries."""
    if request.param is not None:
        monkeypatch.setattr(class_rankings, "BLOCK_ENTRIES", request.param)


def per_column(targets, scores, fn, needs_negative=False):
    """fn(y, s) on each column's valid entries; NaN where the column lacks positives (or negatives)."""
    values = []
    for c in range(targets.shape[1]):
        valid = targets[:, c] != -1
        y, s = targets[valid, c], scores[valid, c]
        defined = (y == 1).any() and (not needs_negative or (y == 0).any())
        values.append(fn(y, s) if defined else np.nan)
    return np.array(values)


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_matches_sklearn_with_ties_and_unknowns(seed, block_entries):
    targets, scores = tied_data(seed)
    expected = per_column(targets, scores, average_precision_score)
    np.testing.assert_allclose(average_precision(targets, scores), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", range(5))
def test_roc_auc_matches_sklearn_with_ties_and_unknowns(seed, block_entries):
    targets, scores = tied_data(seed)
    expected = per_column(targets, scores, roc_auc_score, needs_negative=True)
    np.testing.assert_allclose(roc_auc(targets, scores), expected, rtol=0, atol=1e-10)


def test_float32_scores_keep_their_ties():
    targets, scores = tied_data(7)
    scores32 = scores.astype(np.float32)
    expected = per_column(targets, scores32, average_precision_score)
    np.testing.assert_allclose(average_precision(targets, scores32), expected, rtol=0, atol=1e-10)


def test_published_vector():
    result = mean_average_precision(PUBLISHED_TARGETS, PUBLISHED_SCORES)
    np.testing.assert_allclose(result.ap[:3], [1.0, 5 / 6, 1.0], rtol=0, atol=1e-12)
    assert np.isnan(result.ap[3])
    assert result.undefined == [3]
    assert result.map == pytest.approx((1 + 5 / 6 + 1) / 3, abs=1e-12)


def test_eleven_point_hand_computed():
    # Ranking +,-,+,-,+ : (recall, precision) = (1/3, 1), (1/3, 1/2), (2/3, 2/3), (2/3, 1/2), (1, 3/5).
    # Levels 0-0.3 reach precision 1, levels 0.4-0.6 reach 2/3, levels 0.7-1 reach 3/5.
    scores = np.array([[0.9], [0.8], [0.7], [0.6], [0.5]])
    targets = np.array([[1], [0], [1], [0], [1]])
    expected = (4 * 1 + 3 * 2 / 3 + 4 * 0.6) / 11
    assert average_precision(targets, scores, eleven_point=True)[0] == pytest.approx(expected, abs=1e-12)


def test_eleven_point_counts_a_recall_of_exactly_three_tenths():
    # 3 positives, 1 negative, 7 positives: recall 0.3 is reached at precision 1 exactly.
    targets = np.array([1, 1, 1, 0] + [1] * 7)[:, None]
    scores = np.linspace(1, 0, len(targets))[:, None]
    expected = (4 * 1 + 7 * 10 / 11) / 11
    assert average_precision(targets, scores, eleven_point=True)[0] == pytest.approx(expected, abs=1e-12)


def voc07_ap(y, s):
    """PASCAL VOC devkit 11-point AP for one class, written per detection (untied scores)."""
    order = np.argsort(-s)
    tp = np.cumsum(y[order] == 1)
    fp = np.cumsum(y[order] == 0)
    recall, precision = tp / tp[-1], tp / (tp + fp)
    return np.mean([precision[recall >= k / 10].max(initial=0) for k in range(11)])


def test_eleven_point_matches_voc_devkit_on_untied_scores(block_entries):
    rng = np.random.default_rng(3)
    scores = rng.random((80, 6))
    targets = (rng.random((80, 6)) < 0.3).astype(int)
    targets[rng.random((80, 6)) < 0.1] = -1
    expected = per_column(targets, scores, voc07_ap)
    np.testing.assert_allclose(average_precision(targets, scores, eleven_point=True), expected, rtol=0, atol=1e-12)


def loop_predictions(scores, threshold, top_k):
    """Straightforward predictions: per image, sort classes by (-score, index) for top-k."""
    num_images, num_classes = scores.shape
    predicted = np.zeros(scores.shape, dtype=bool)
    for i in range(num_images):
        if top_k is None:
            for j in range(num_classes):
                predicted[i, j] = scores[i, j] >= threshold
        else:
            for j in sorted(range(num_classes), key=lambda j: (-scores[i, j], j))[:top_k]:
                predicted[i, j] = True
    return predicted


def loop_scores(targets, predicted):
    """ML-GCN style counts in plain loops, skipping -1 entries and classes with no positive."""
    num_images, num_classes = targets.shape
    correct, claimed, positives = [0] * num_classes, [0] * num_classes, [0] * num_classes
    for i in range(num_images):
        for j in range(num_classes):
            if targets[i, j] == -1:
                continue
            positives[j] += targets[i, j] == 1
            claimed[j] += predicted[i, j]
            correct[j] += predicted[i, j] and targets[i, j] == 1
    kept = [j for j in range(num_classes) if positives[j] > 0]
    cp = sum(correct[j] / claimed[j] if claimed[j] else 0.0 for j in kept) / len(kept)
    cr = sum(correct[j] / positives[j] for j in kept) / len(kept)
    op, orecall = sum(correct) / sum(claimed), sum(correct) / sum(positives)
    return {
        "CP": cp,
        "CR": cr,
        "CF1": 2 * cp * cr / (cp + cr),
        "OP": op,
        "OR": orecall,
        "OF1": 2 * op * orecall / (op + orecall),
        "undefined": [j for j in range(num_classes) if positives[j] == 0],
    }


@pytest.mark.parametrize("top_k", [None, 3])
@pytest.mark.parametrize("seed", range(3))
def test_multilabel_scores_match_loop_reference(seed, top_k, block_entries):
    targets, scores = tied_data(seed, num_images=60)
    got = multilabel_scores(targets, scores, threshold=0.5, top_k=top_k)
    expected = loop_scores(targets, loop_predictions(scores, 0.5, top_k))
    assert got["undefined"] == expected.pop("undefined")
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_per_class_thresholds_are_applied_per_column():
    targets, scores = tied_data(4, num_images=60)
    threshold = np.linspace(0.2, 0.8, scores.shape[1])
    expected = scores >= threshold[None, :]
    np.testing.assert_array_equal(binarize(scores, threshold), expected)
    with pytest.raises(ValueError, match="one value per class"):
        binarize(scores, threshold[:-1])


def test_top_k_breaks_ties_by_column_order():
    scores = np.array([[0.5, 0.5, 0.5, 0.5, 0.9], [0.1, 0.2, 0.2, 0.2, 0.2]])
    np.testing.assert_array_equal(
        binarize(scores, top_k=3), [[True, True, False, False, True], [False, True, True, True, False]]
    )
    assert binarize(scores, top_k=10).all()


@pytest.mark.parametrize("top_k", [None, 3])
def test_cf1_macro_matches_sklearn_macro_f1(top_k):
    targets, scores = tied_data(5, unknown=0.0)
    targets[:, 2] = 0  # tied_data blanks column 2; here columns are fully known
    predicted = binarize(scores, 0.5, top_k)
    kept = (targets == 1).any(axis=0)
    expected = f1_score(targets[:, kept], predicted[:, kept], average="macro", zero_division=0)
    assert multilabel_scores(targets, scores, top_k=top_k)["CF1_macro"] == pytest.approx(expected, abs=1e-12)


def test_cf1_macro_with_unknowns_matches_sklearn_per_column():
    targets, scores = tied_data(6)
    predicted = binarize(scores, 0.5)
    f1 = per_column(targets, predicted.astype(int), lambda y, p: f1_score(y, p, zero_division=0))
    assert multilabel_scores(targets, scores)["CF1_macro"] == pytest.approx(np.nanmean(f1), abs=1e-12)


def test_example_based_metrics_match_sklearn_without_unknowns():
    targets, scores = tied_data(8, unknown=0.0)
    targets[:, 2] = 0
    predicted = binarize(scores, 0.6)
    assert hamming_loss(targets, predicted) == pytest.approx(sk_hamming_loss(targets, predicted), abs=1e-12)
    assert subset_accuracy(targets[:, :4], predicted[:, :4]) == pytest.approx(
        accuracy_score(targets[:, :4], predicted[:, :4]), abs=1e-12
    )
    expected_f1 = f1_score(targets, predicted, average="samples", zero_division=1.0)
    assert example_f1(targets, predicted) == pytest.approx(expected_f1, abs=1e-12)


def test_example_based_metrics_ignore_unknowns():
    targets = np.array([[1, -1, 0], [-1, -1, -1], [0, 1, -1], [0, 0, 0]])
    predicted = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 1], [0, 0, 0]], dtype=bool)
    # Valid entries: image 0 all right, image 1 none (left out), image 2 one wrong of two, image 3 right.
    assert hamming_loss(targets, predicted) == pytest.approx(1 / 7)
    assert subset_accuracy(targets, predicted) == pytest.approx(2 / 3)
    # F1 per scored image: 1, 2*1/(1+2), and 1 for "nothing present, nothing predicted".
    assert example_f1(targets, predicted) == pytest.approx((1 + 2 / 3 + 1) / 3)


def assert_no_nan(value):
    """Walks a JSON-like value and fails on any NaN or infinity."""
    json.dumps(value, allow_nan=False)


@pytest.mark.parametrize(
    "targets",
    [
        np.zeros((5, 4), dtype=int),  # all negatives
        -np.ones((5, 4), dtype=int),  # all unknown
        np.array([[1, 0, -1, 1]]),  # single image
        np.ones((5, 4), dtype=int),  # all positives
        np.zeros((0, 4), dtype=int),  # no images (every validation image failed to decode)
    ],
    ids=["all-negative", "all-unknown", "single-image", "all-positive", "no-images"],
)
def test_degenerate_inputs_give_no_nan(targets):
    scores = np.random.default_rng(0).random(targets.shape)
    names = [f"class_{j}" for j in range(targets.shape[1])]
    summary = evaluate_all(targets, scores, names, top_k=3)
    assert_no_nan(summary)
    for top_k in (None, 2):
        assert_no_nan(multilabel_scores(targets, scores, top_k=top_k))
    result = mean_average_precision(targets, scores)
    assert not np.isnan(result.map)
    if not (targets == 1).any():
        assert result.map == 0.0 and result.undefined == list(range(targets.shape[1]))
        assert summary["undefined_classes"] == names
        assert all(value is None for value in summary["AP"].values())


def test_evaluate_all_summary():
    names = ["cat", "dog", "car", "tree"]
    summary = evaluate_all(PUBLISHED_TARGETS, PUBLISHED_SCORES, names, threshold=0.5, top_k=2)
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary
    assert summary["AP"]["dog"] == pytest.approx(5 / 6)
    assert summary["AP"]["tree"] is None and summary["undefined_classes"] == ["tree"]
    assert summary["AUC"]["dog"] == pytest.approx(0.75) and summary["auc_undefined_classes"] == ["tree"]
    assert summary["mAP"] == pytest.approx(mean_average_precision(PUBLISHED_TARGETS, PUBLISHED_SCORES).map)
    expected = multilabel_scores(PUBLISHED_TARGETS, PUBLISHED_SCORES, top_k=2)
    assert summary["at_top_k"]["CF1"] == pytest.approx(expected["CF1"])
    assert set(summary["at_threshold"]) >= {"CP", "CR", "CF1", "CF1_macro", "OP", "OR", "OF1", "hamming_loss"}
    with pytest.raises(ValueError, match="name the 4 classes"):
        evaluate_all(PUBLISHED_TARGETS, PUBLISHED_SCORES, names[:3])


def test_bad_inputs_are_rejected_with_the_value():
    with pytest.raises(ValueError, match=r"\[2\]"):
        average_precision(np.array([[1, 2]]), np.array([[0.1, 0.2]]))
    with pytest.raises(ValueError, match="NaN"):
        average_precision(np.array([[1, 0]]), np.array([[np.nan, 0.2]]))
    with pytest.raises(ValueError, match="same shape"):
        average_precision(np.array([[1, 0]]), np.array([[0.1, 0.2, 0.3]]))
    with pytest.raises(ValueError, match="top_k"):
        binarize(np.zeros((2, 3)), top_k=0)
