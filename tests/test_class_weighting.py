"""class_weighting: each weighting against a NumPy transcription of its formula, on labels with -1 entries,
and the sigmoid losses with those weights against NumPy transcriptions of the weighted losses."""

import types

import keras
import numpy as np
import pytest

from multi_label.losses import (
    CLASS_WEIGHTINGS,
    AsymmetricLoss,
    BinaryCrossEntropy,
    FocalLoss,
    GHMCLoss,
    build_loss,
    effective_number,
    effective_number_weights,
    positive_weights_from_labels,
)

# 8 images, 4 classes, -1 (unknown) entries in every class; class 3 is never present.
LABELS = np.array([
    [1, 0, 0, 0],
    [1, 1, -1, 0],
    [1, 0, 0, -1],
    [0, -1, 1, 0],
    [1, 0, 0, 0],
    [-1, 0, 0, 0],
    [1, 0, -1, 0],
    [0, 1, 0, -1],
])
RNG = np.random.default_rng(3)
LOGITS = RNG.normal(0.0, 2.0, LABELS.shape).astype("float32")
TOL = {"rtol": 1e-5, "atol": 1e-6}


def reference_effective_number_weights(labels, beta):
    """Cui et al. 2019 over the 2C (class, present/absent) groups, written out term by term."""
    groups = []
    for c in range(labels.shape[1]):
        groups.append(sum(1 for v in labels[:, c] if v == 1))
    for c in range(labels.shape[1]):
        groups.append(sum(1 for v in labels[:, c] if v == 0))
    raw = [(1 - beta) / (1 - beta ** n) if n > 0 else None for n in groups]  # 1 / E_n
    present = [w for w in raw if w is not None]
    scale = len(present) / sum(present)  # weights of the present groups sum to their number
    weights = [1.0 if w is None else w * scale for w in raw]
    return weights[:labels.shape[1]], weights[labels.shape[1]:]


def reference_weighted_bce(y, x, w_pos, w_neg, ls=0.0):
    t = y * (1 - ls) + 0.5 * ls
    p = 1 / (1 + np.exp(-x))
    per_entry = -(np.asarray(w_pos) * t * np.log(p) + np.asarray(w_neg) * (1 - t) * np.log(1 - p))
    valid = y >= 0
    return per_entry[valid].sum() / valid.sum()


def reference_weighted_focal(y, x, gamma, alpha, w_pos, w_neg):
    p = 1 / (1 + np.exp(-x))
    p_t = np.where(y == 1, p, 1 - p)
    alpha_t = np.where(y == 1, alpha, 1 - alpha)
    class_weight = np.where(y == 1, np.asarray(w_pos), np.asarray(w_neg))
    per_entry = -class_weight * alpha_t * (1 - p_t) ** gamma * np.log(p_t)
    valid = y >= 0
    return per_entry[valid].sum() / valid.sum()


def reference_weighted_asl(y, x, gamma_pos, gamma_neg, clip, w_pos, w_neg, eps=1e-8):
    p = 1 / (1 + np.exp(-x))
    p_m = np.maximum(p - clip, 0)
    positive = (1 - p) ** gamma_pos * np.log(np.maximum(p, eps))
    negative = p_m ** gamma_neg * np.log(np.maximum(1 - p_m, eps))
    per_entry = -(np.asarray(w_pos) * (y == 1) * positive + np.asarray(w_neg) * (y == 0) * negative)
    valid = y >= 0
    return per_entry[valid].sum() / valid.sum()


def settings(**changes):
    values = {"loss": "bce", "label_smoothing": 0.0, "pos_weight": None, "class_weighting": "none",
              "class_weight_beta": 0.999, "focal_gamma": 2.0, "focal_alpha": 0.25, "ghm_bins": 30,
              "ghm_momentum": 0.75, "asl_gamma_pos": 0.0, "asl_gamma_neg": 4.0, "asl_clip": 0.05,
              "unknown_labels": "ignore"}
    return types.SimpleNamespace(**{**values, **changes})


# ------------------------------------------------------------------ the weights


def test_effective_number_is_the_papers_formula():
    beta = 0.9
    counts = np.array([0, 1, 2, 10, 1000])
    expected = [(1 - beta ** n) / (1 - beta) for n in counts]
    np.testing.assert_allclose(effective_number(counts, beta), expected, rtol=1e-12)
    assert effective_number([1, 5], 0.0).tolist() == [1.0, 1.0]  # beta = 0: every sample counts once
    assert effective_number([10**6], 0.999)[0] == pytest.approx(1 / (1 - 0.999))  # the bound 1 / (1 - beta)
    with pytest.raises(ValueError, match="beta"):
        effective_number([1], 1.0)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.999, 0.9999])
def test_effective_number_weights_match_the_transcription(beta):
    positive, negative = effective_number_weights(LABELS, beta)
    expected_positive, expected_negative = reference_effective_number_weights(LABELS, beta)
    np.testing.assert_allclose(positive, expected_positive, rtol=1e-12)
    np.testing.assert_allclose(negative, expected_negative, rtol=1e-12)
    assert positive[3] == 1.0  # class 3 has no positive: no term to weight, left out of the normalisation
    present = np.concatenate([positive[:3], negative])
    assert present.sum() == pytest.approx(len(present))  # normalised as the paper: sum = number of groups


def test_unknown_entries_change_no_count_and_no_weight():
    unknown_rows = np.full((5, LABELS.shape[1]), -1)
    more = np.concatenate([LABELS, unknown_rows])
    for name in CLASS_WEIGHTINGS:
        assert CLASS_WEIGHTINGS[name](more, 0.99) == CLASS_WEIGHTINGS[name](LABELS, 0.99)
    # a -1 turned into a 0 is counted: the weights move (the count is over known entries only)
    known = LABELS.copy()
    known[5, 0] = 0
    assert effective_number_weights(known, 0.99) != effective_number_weights(LABELS, 0.99)


def test_beta_zero_weighs_nothing_and_beta_near_one_gives_the_inverse_ratio():
    positive, negative = effective_number_weights(LABELS, 0.0)
    assert positive == [1.0] * 4 and negative == [1.0] * 4
    positive, negative = effective_number_weights(LABELS, 1 - 1e-9)
    counts_pos = (LABELS == 1).sum(0)[:3]
    counts_neg = (LABELS == 0).sum(0)[:3]
    np.testing.assert_allclose(np.array(positive[:3]) / np.array(negative[:3]), counts_neg / counts_pos, rtol=1e-6)


def test_inverse_is_pos_weight_auto():
    assert CLASS_WEIGHTINGS["inverse"](LABELS, 0.5) == (positive_weights_from_labels(LABELS), None)
    assert CLASS_WEIGHTINGS["none"](LABELS, 0.5) == (None, None)
    by_setting = build_loss(settings(class_weighting="inverse"), train_labels=LABELS)
    by_auto = build_loss(settings(pos_weight="auto"), train_labels=LABELS)
    assert by_setting.get_config() == by_auto.get_config()
    assert by_setting.neg_weight is None
    np.testing.assert_allclose(float(by_setting(LABELS, LOGITS)), float(by_auto(LABELS, LOGITS)), **TOL)


def test_build_loss_applies_effective_number_to_every_sigmoid_loss():
    expected = effective_number_weights(LABELS, 0.99)
    for name in ("bce", "focal", "ghm", "asl"):
        loss = build_loss(settings(loss=name, class_weighting="effective_number", class_weight_beta=0.99), LABELS)
        assert (loss.pos_weight, loss.neg_weight) == expected, name
    with pytest.raises(ValueError, match="train_labels"):
        build_loss(settings(class_weighting="effective_number"))


# ------------------------------------------------------------------ the weighted losses

WEIGHTS = effective_number_weights(LABELS, 0.99)


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_weighted_bce_matches_the_transcription(ls):
    loss = BinaryCrossEntropy(label_smoothing=ls, pos_weight=WEIGHTS[0], neg_weight=WEIGHTS[1])
    expected = reference_weighted_bce(LABELS, LOGITS.astype(np.float64), *WEIGHTS, ls=ls)
    np.testing.assert_allclose(float(loss(LABELS, LOGITS)), expected, **TOL)


def test_weighted_focal_matches_the_transcription():
    loss = FocalLoss(gamma=2.0, alpha=0.25, pos_weight=WEIGHTS[0], neg_weight=WEIGHTS[1])
    expected = reference_weighted_focal(LABELS, LOGITS.astype(np.float64), 2.0, 0.25, *WEIGHTS)
    np.testing.assert_allclose(float(loss(LABELS, LOGITS)), expected, **TOL)


def test_weighted_asl_matches_the_transcription():
    loss = AsymmetricLoss(gamma_pos=1.0, gamma_neg=4.0, clip=0.05, pos_weight=WEIGHTS[0], neg_weight=WEIGHTS[1])
    expected = reference_weighted_asl(LABELS, LOGITS.astype(np.float64), 1.0, 4.0, 0.05, *WEIGHTS)
    np.testing.assert_allclose(float(loss(LABELS, LOGITS)), expected, **TOL)


def test_weighted_ghm_is_its_density_weights_times_the_weighted_bce():
    # momentum 0 and one entry per bin: every GHM weight is 1, so GHM is the weighted BCE
    labels = np.array([[1, 0, 1, 0]])
    logits = np.array([[2.5, -0.3, -1.1, 0.4]], "float32")  # |p - t| in four different bins of 4
    loss = GHMCLoss(bins=4, momentum=0.0, pos_weight=WEIGHTS[0], neg_weight=WEIGHTS[1])
    expected = reference_weighted_bce(labels, logits.astype(np.float64), *WEIGHTS)
    np.testing.assert_allclose(float(loss(labels, logits)), expected, **TOL)


@pytest.mark.parametrize("make", [
    lambda: BinaryCrossEntropy(pos_weight=WEIGHTS[0], neg_weight=WEIGHTS[1]),
    lambda: FocalLoss(pos_weight=WEIGHTS[0], neg_weight=WEIGHTS[1]),
    lambda: AsymmetricLoss(pos_weight=WEIGHTS[0], neg_weight=WEIGHTS[1]),
    lambda: GHMCLoss(momentum=0.0, pos_weight=WEIGHTS[0], neg_weight=WEIGHTS[1]),
], ids=["bce", "focal", "asl", "ghm"])
def test_unknown_entries_leave_the_weighted_loss_unchanged(make):
    loss = make()
    noisy = np.where(LABELS < 0, RNG.normal(0, 50, LABELS.shape), LOGITS).astype("float32")
    np.testing.assert_allclose(float(loss(LABELS, noisy)), float(loss(LABELS, LOGITS)), **TOL)


def test_negative_weight_scales_only_the_negative_terms():
    positives_only = np.where(LABELS == 0, -1, LABELS)
    heavy = BinaryCrossEntropy(neg_weight=[10.0] * 4)
    plain = BinaryCrossEntropy()
    np.testing.assert_allclose(float(heavy(positives_only, LOGITS)), float(plain(positives_only, LOGITS)), **TOL)
    negatives_only = np.where(LABELS == 1, -1, LABELS)
    np.testing.assert_allclose(float(heavy(negatives_only, LOGITS)), 10 * float(plain(negatives_only, LOGITS)),
                               **TOL)
    with pytest.raises(ValueError, match="neg_weight has 2 values"):
        BinaryCrossEntropy(neg_weight=[1.0, 2.0])(LABELS, LOGITS)
    with pytest.raises(ValueError, match="neg_weight values must be finite and > 0"):
        BinaryCrossEntropy(neg_weight=[1.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize("cls", [BinaryCrossEntropy, FocalLoss, AsymmetricLoss, GHMCLoss])
def test_get_config_round_trip_keeps_both_weights(cls):
    loss = cls(pos_weight=WEIGHTS[0], neg_weight=WEIGHTS[1])
    config = loss.get_config()
    assert config["pos_weight"] == WEIGHTS[0] and config["neg_weight"] == WEIGHTS[1]
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(clone) is cls and clone.get_config() == config
    np.testing.assert_allclose(float(clone(LABELS, LOGITS)), float(loss(LABELS, LOGITS)), **TOL)
    older = {k: v for k, v in config.items() if k != "neg_weight"}  # a loss saved before neg_weight existed
    assert cls.from_config(older).neg_weight is None
