"""Tests for multi_label.losses against NumPy transcriptions of the papers."""

import dataclasses
import inspect
import os
import subprocess
import sys
import textwrap
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from configs import Config
from multi_label.losses import (
    GROUP_LOSSES,
    LOSSES,
    AsymmetricLoss,
    BinaryCrossEntropy,
    FocalLoss,
    GHMCLoss,
    LossSettings,
    SoftmaxAsymmetric,
    SoftmaxCrossEntropy,
    SoftmaxFocal,
    SoftmaxGHM,
    build_group_losses,
    build_loss,
    positive_weights_from_labels,
)
from multi_label.losses.builder import family_arguments
from multi_label.tasks.settings import loss_settings
from utils.config import ConfigError, load_config

TOL = dict(rtol=1e-5, atol=1e-5)

# Hand-made labels: row 1 is all negative, -1 entries are unknown.
Y = np.array(
    [
        [1, 0, 0, -1, 1],
        [0, 0, 0, 0, 0],
        [-1, -1, 1, 0, 0],
        [1, 1, 0, 0, -1],
    ],
    dtype="float32",
)
X = np.random.default_rng(0).uniform(-6, 6, size=Y.shape).astype("float32")
POS_WEIGHT = [2.0, 1.0, 3.0, 1.5, 0.5]

# Group labels: one-of-4 class index per sample, -1 unknown.
Y_GROUP = np.array([2, -1, 0, 3, 1, -1], dtype="int32")
X_GROUP = np.random.default_rng(1).uniform(-5, 5, size=(6, 4)).astype("float32")


# ---------------------------------------------------------------- references
# Independent float64 transcriptions of the formulas, written for clarity.


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, "float64")))


def smooth(y, ls):
    return y * (1.0 - ls) + 0.5 * ls


def valid_mean(per_entry, valid):
    return per_entry[valid].sum() / max(valid.sum(), 1)


def ref_bce(y, x, pos_weight=None, ls=0.0):
    valid, t, p = y >= 0, smooth(y, ls), sigmoid(x)
    w = np.ones(y.shape[-1]) if pos_weight is None else np.asarray(pos_weight)
    per_entry = -(w * t * np.log(p) + (1 - t) * np.log(1 - p))
    return valid_mean(per_entry, valid)


def ref_focal_paper(y, x, gamma, alpha, pos_weight=None):
    """Lin et al. 2017 with hard targets: -alpha_t (1 - p_t)^gamma log p_t."""
    valid, p = y >= 0, sigmoid(x)
    p_t = np.where(y == 1, p, 1 - p)
    alpha_t = np.where(y == 1, alpha, 1 - alpha) if alpha >= 0 else np.ones_like(p)
    w = np.ones(y.shape[-1]) if pos_weight is None else np.asarray(pos_weight)
    w_t = np.where(y == 1, w, 1.0)
    return valid_mean(-w_t * alpha_t * (1 - p_t) ** gamma * np.log(p_t), valid)


def ref_focal_soft(y, x, gamma, alpha, ls):
    """Soft-target generalisation: alpha_t (1 - p_t)^gamma * BCE(t, x)."""
    valid, t, p = y >= 0, smooth(y, ls), sigmoid(x)
    p_t = p * t + (1 - p) * (1 - t)
    alpha_t = alpha * t + (1 - alpha) * (1 - t)
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    return valid_mean(alpha_t * (1 - p_t) ** gamma * bce, valid)


def ghm_weights_reference(g, valid, bins, momentum, acc):
    """mmdetection's GHMC weighting loop; returns weights and the new acc."""
    edges = np.arange(bins + 1) / bins
    edges[-1] += 1e-6
    total = max(valid.sum(), 1)
    weights = np.zeros_like(g)
    acc = acc.copy()
    non_empty = 0
    for i in range(bins):
        inds = (g >= edges[i]) & (g < edges[i + 1]) & valid
        num_in_bin = inds.sum()
        if num_in_bin > 0:
            if momentum > 0:
                acc[i] = momentum * acc[i] + (1 - momentum) * num_in_bin
                weights[inds] = total / acc[i]
            else:
                weights[inds] = total / num_in_bin
            non_empty += 1
    if non_empty > 0:
        weights /= non_empty
    return weights, acc


def ref_ghm(y, x, bins, momentum, acc, pos_weight=None, ls=0.0):
    valid, t, p = y >= 0, smooth(y, ls), sigmoid(x)
    weights, acc = ghm_weights_reference(np.abs(p - t), valid, bins, momentum, acc)
    w = np.ones(y.shape[-1]) if pos_weight is None else np.asarray(pos_weight)
    bce = -(w * t * np.log(p) + (1 - t) * np.log(1 - p))
    return valid_mean(weights * bce, valid), acc


def ref_asl(y, x, gamma_pos, gamma_neg, clip, eps=1e-8, pos_weight=None, ls=0.0):
    """Ridnik et al. 2021, transcribed from the authors' AsymmetricLoss."""
    valid, t = y >= 0, smooth(y, ls)
    xs_pos = sigmoid(x)
    xs_neg = 1 - xs_pos
    if clip > 0:
        xs_neg = np.minimum(xs_neg + clip, 1)
    w = np.ones(y.shape[-1]) if pos_weight is None else np.asarray(pos_weight)
    loss_pos = w * t * np.log(np.maximum(xs_pos, eps)) * (1 - xs_pos) ** gamma_pos
    loss_neg = (1 - t) * np.log(np.maximum(xs_neg, eps)) * (1 - xs_neg) ** gamma_neg
    return valid_mean(-(loss_pos + loss_neg), valid)


def softmax(x):
    x = np.asarray(x, "float64")
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def group_targets(labels, k, ls):
    one_hot = np.eye(k)[np.maximum(labels, 0)]
    return one_hot, one_hot * (1 - ls) + ls / k


def ref_softmax_ce(labels, x, ls=0.0):
    valid = labels >= 0
    _, t = group_targets(labels, x.shape[-1], ls)
    return valid_mean(-(t * np.log(softmax(x))).sum(-1), valid)


def ref_softmax_focal(labels, x, gamma, ls=0.0):
    valid, p = labels >= 0, softmax(x)
    _, t = group_targets(labels, x.shape[-1], ls)
    return valid_mean(-(t * (1 - p) ** gamma * np.log(p)).sum(-1), valid)


def ref_softmax_asl(labels, x, gamma_pos, gamma_neg, ls=0.0):
    """The ASL authors' ASLSingleLabel, mean over valid samples."""
    valid, p = labels >= 0, softmax(x)
    one_hot, t = group_targets(labels, x.shape[-1], ls)
    xs_pos = p * one_hot
    xs_neg = (1 - p) * (1 - one_hot)
    weight = (1 - xs_pos - xs_neg) ** (gamma_pos * one_hot + gamma_neg * (1 - one_hot))
    return valid_mean(-(t * weight * np.log(p)).sum(-1), valid)


def ref_softmax_ghm(labels, x, bins, momentum, acc, ls=0.0):
    valid, p = labels >= 0, softmax(x)
    _, t = group_targets(labels, x.shape[-1], ls)
    g = 0.5 * np.abs(p - t).sum(-1)
    weights, acc = ghm_weights_reference(g, valid, bins, momentum, acc)
    return valid_mean(-weights * (t * np.log(p)).sum(-1), valid), acc


# ------------------------------------------------------------------- helpers


def value_and_grad(loss, y_true, logits):
    logits = tf.Variable(np.asarray(logits, "float32"))
    with tf.GradientTape() as tape:
        value = loss(tf.constant(y_true), logits)
    return float(value), tape.gradient(value, logits).numpy()


BINARY_FACTORIES = {
    "bce": lambda: BinaryCrossEntropy(label_smoothing=0.1, pos_weight=POS_WEIGHT),
    "focal": lambda: FocalLoss(gamma=2.0, alpha=0.25, label_smoothing=0.1, pos_weight=POS_WEIGHT),
    "focal_gamma0": lambda: FocalLoss(gamma=0.0, alpha=-1.0),
    "ghm": lambda: GHMCLoss(bins=10, momentum=0.75, label_smoothing=0.1, pos_weight=POS_WEIGHT),
    "asl": lambda: AsymmetricLoss(
        gamma_pos=1.0, gamma_neg=4.0, clip=0.05, label_smoothing=0.1, pos_weight=POS_WEIGHT
    ),
    "asl_noclip": lambda: AsymmetricLoss(gamma_pos=0.0, gamma_neg=0.0, clip=0.0),
}

GROUP_FACTORIES = {
    "softmax_ce": lambda: SoftmaxCrossEntropy(label_smoothing=0.1),
    "softmax_focal": lambda: SoftmaxFocal(gamma=2.0, label_smoothing=0.1),
    "softmax_focal_gamma0": lambda: SoftmaxFocal(gamma=0.0),
    "softmax_ghm": lambda: SoftmaxGHM(bins=10, momentum=0.75, label_smoothing=0.1),
    "softmax_asl": lambda: SoftmaxAsymmetric(gamma_pos=1.0, gamma_neg=4.0, label_smoothing=0.1),
}


def config(**overrides):
    return LossSettings(**overrides)


def tiny_model(num_outputs, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(num_outputs)(inputs))


# ------------------------------------------------------ values vs. references


@pytest.mark.parametrize("pos_weight", [None, POS_WEIGHT])
def test_bce_matches_reference(pos_weight):
    loss = BinaryCrossEntropy(pos_weight=pos_weight)
    np.testing.assert_allclose(float(loss(Y, X)), ref_bce(Y, X, pos_weight), **TOL)


@pytest.mark.parametrize("gamma, alpha", [(2.0, 0.25), (0.5, 0.75), (2.0, -1.0), (0.0, 0.25)])
@pytest.mark.parametrize("pos_weight", [None, POS_WEIGHT])
def test_focal_matches_paper_formula(gamma, alpha, pos_weight):
    loss = FocalLoss(gamma=gamma, alpha=alpha, pos_weight=pos_weight)
    expected = ref_focal_paper(Y, X, gamma, alpha, pos_weight)
    np.testing.assert_allclose(float(loss(Y, X)), expected, **TOL)


def test_focal_with_label_smoothing_matches_soft_generalisation():
    loss = FocalLoss(gamma=2.0, alpha=0.25, label_smoothing=0.2)
    np.testing.assert_allclose(float(loss(Y, X)), ref_focal_soft(Y, X, 2.0, 0.25, 0.2), **TOL)


@pytest.mark.parametrize("pos_weight, ls", [(None, 0.0), (POS_WEIGHT, 0.1)])
def test_ghm_matches_mmdetection_reference_without_momentum(pos_weight, ls):
    loss = GHMCLoss(bins=10, momentum=0.0, pos_weight=pos_weight, label_smoothing=ls)
    expected, _ = ref_ghm(Y, X, 10, 0.0, np.zeros(10), pos_weight, ls)
    np.testing.assert_allclose(float(loss(Y, X)), expected, **TOL)


def test_ghm_momentum_state_persists_in_tf_function():
    loss = GHMCLoss(bins=10, momentum=0.75)
    step = tf.function(lambda y, x: loss(y, x))
    acc = np.zeros(10)
    rng = np.random.default_rng(2)
    for _ in range(3):
        logits = rng.uniform(-4, 4, size=Y.shape).astype("float32")
        expected, acc = ref_ghm(Y, logits, 10, 0.75, acc)
        value = step(tf.constant(Y), tf.constant(logits))
        np.testing.assert_allclose(float(value), expected, **TOL)
        np.testing.assert_allclose(loss.accumulated_counts, acc, **TOL)


def test_ghm_with_one_entry_per_bin_equals_bce():
    bins = 10
    centres = (np.arange(bins) + 0.5) / bins
    labels = np.zeros((1, bins), "float32")
    # For a negative target g = p, so these logits put one entry in each bin.
    logits = np.log(centres / (1 - centres)).astype("float32")[None]
    ghm = GHMCLoss(bins=bins, momentum=0.0)
    np.testing.assert_allclose(
        float(ghm(labels, logits)), float(BinaryCrossEntropy()(labels, logits)), **TOL
    )


@pytest.mark.parametrize(
    "gamma_pos, gamma_neg, clip", [(0.0, 4.0, 0.05), (1.0, 2.0, 0.0), (2.0, 3.0, 0.2)]
)
@pytest.mark.parametrize("pos_weight, ls", [(None, 0.0), (POS_WEIGHT, 0.1)])
def test_asl_matches_reference(gamma_pos, gamma_neg, clip, pos_weight, ls):
    loss = AsymmetricLoss(gamma_pos, gamma_neg, clip, pos_weight=pos_weight, label_smoothing=ls)
    expected = ref_asl(Y, X, gamma_pos, gamma_neg, clip, pos_weight=pos_weight, ls=ls)
    np.testing.assert_allclose(float(loss(Y, X)), expected, **TOL)


def test_asl_without_focusing_or_clip_equals_bce():
    asl = AsymmetricLoss(gamma_pos=0.0, gamma_neg=0.0, clip=0.0)
    np.testing.assert_allclose(float(asl(Y, X)), float(BinaryCrossEntropy()(Y, X)), **TOL)


def test_label_smoothing_moves_targets_to_095_and_005():
    smoothed = BinaryCrossEntropy(label_smoothing=0.1)(Y, X)
    targets = np.where(Y == 1, 0.95, 0.05)
    p = sigmoid(X)
    per_entry = -(targets * np.log(p) + (1 - targets) * np.log(1 - p))
    np.testing.assert_allclose(float(smoothed), valid_mean(per_entry, Y >= 0), **TOL)


def test_pos_weight_scales_only_positive_entries():
    only_negatives = np.where(Y == 1, -1, Y).astype("float32")
    weighted = BinaryCrossEntropy(pos_weight=[10.0] * 5)
    np.testing.assert_allclose(
        float(weighted(only_negatives, X)), float(BinaryCrossEntropy()(only_negatives, X)), **TOL
    )
    only_positives = np.where(Y == 0, -1, Y).astype("float32")
    unweighted = float(BinaryCrossEntropy()(only_positives, X))
    np.testing.assert_allclose(float(weighted(only_positives, X)), 10 * unweighted, **TOL)


def test_pos_weight_length_must_match_classes():
    with pytest.raises(ValueError, match="5 classes"):
        BinaryCrossEntropy(pos_weight=[1.0, 2.0])(Y, X)


@pytest.mark.parametrize(
    "loss, reference",
    [
        (SoftmaxCrossEntropy(), lambda: ref_softmax_ce(Y_GROUP, X_GROUP)),
        (SoftmaxCrossEntropy(label_smoothing=0.1), lambda: ref_softmax_ce(Y_GROUP, X_GROUP, 0.1)),
        (SoftmaxFocal(gamma=2.0), lambda: ref_softmax_focal(Y_GROUP, X_GROUP, 2.0)),
        (
            SoftmaxFocal(gamma=1.5, label_smoothing=0.2),
            lambda: ref_softmax_focal(Y_GROUP, X_GROUP, 1.5, 0.2),
        ),
        (SoftmaxAsymmetric(1.0, 4.0), lambda: ref_softmax_asl(Y_GROUP, X_GROUP, 1.0, 4.0)),
        (
            SoftmaxAsymmetric(1.0, 4.0, 0.1),
            lambda: ref_softmax_asl(Y_GROUP, X_GROUP, 1.0, 4.0, 0.1),
        ),
        (
            SoftmaxGHM(bins=5, momentum=0.0),
            lambda: ref_softmax_ghm(Y_GROUP, X_GROUP, 5, 0.0, np.zeros(5))[0],
        ),
        (
            SoftmaxGHM(bins=5, momentum=0.5, label_smoothing=0.1),
            lambda: ref_softmax_ghm(Y_GROUP, X_GROUP, 5, 0.5, np.zeros(5), 0.1)[0],
        ),
    ],
    ids=["ce", "ce_ls", "focal", "focal_ls", "asl", "asl_ls", "ghm", "ghm_momentum_ls"],
)
def test_group_losses_match_reference(loss, reference):
    np.testing.assert_allclose(float(loss(Y_GROUP, X_GROUP)), reference(), **TOL)


def test_group_losses_accept_labels_with_trailing_axis():
    loss = SoftmaxCrossEntropy()
    np.testing.assert_allclose(
        float(loss(Y_GROUP[:, None], X_GROUP)), float(loss(Y_GROUP, X_GROUP)), **TOL
    )


def test_group_ghm_state_follows_reference_moving_average():
    loss = SoftmaxGHM(bins=5, momentum=0.5)
    step = tf.function(lambda y, x: loss(y, x))
    acc = np.zeros(5)
    for scale in (1.0, 0.3, 2.0):
        logits = X_GROUP * scale
        expected, acc = ref_softmax_ghm(Y_GROUP, logits, 5, 0.5, acc)
        np.testing.assert_allclose(float(step(Y_GROUP, logits)), expected, **TOL)
    np.testing.assert_allclose(loss.accumulated_counts, acc, **TOL)


def test_group_asl_without_focusing_equals_cross_entropy():
    np.testing.assert_allclose(
        float(SoftmaxAsymmetric(0.0, 0.0, 0.1)(Y_GROUP, X_GROUP)),
        float(SoftmaxCrossEntropy(0.1)(Y_GROUP, X_GROUP)),
        **TOL,
    )


# --------------------------------------------------- masking and stability


@pytest.mark.parametrize("name", sorted(BINARY_FACTORIES))
def test_masked_entries_have_no_effect_binary(name):
    factory = BINARY_FACTORIES[name]
    masked = Y < 0
    scrambled = X.copy()
    scrambled[masked] = [np.nan, np.inf, -np.inf, 1e4]
    value, grad = value_and_grad(factory(), Y, X)
    loss = factory()
    value_scrambled, grad_scrambled = value_and_grad(loss, Y, scrambled)
    np.testing.assert_allclose(value_scrambled, value, **TOL)
    np.testing.assert_allclose(grad_scrambled[~masked], grad[~masked], **TOL)
    assert np.all(grad_scrambled[masked] == 0.0)
    if isinstance(loss, GHMCLoss):
        reference = factory()
        reference(Y, X)
        np.testing.assert_allclose(loss.accumulated_counts, reference.accumulated_counts)


@pytest.mark.parametrize("name", sorted(GROUP_FACTORIES))
def test_masked_samples_have_no_effect_group(name):
    factory = GROUP_FACTORIES[name]
    masked = Y_GROUP < 0
    scrambled = X_GROUP.copy()
    scrambled[masked] = [[np.nan, np.inf, -np.inf, 1e4], [1e4, -1e4, 0.0, np.nan]]
    value, grad = value_and_grad(factory(), Y_GROUP, X_GROUP)
    loss = factory()
    value_scrambled, grad_scrambled = value_and_grad(loss, Y_GROUP, scrambled)
    np.testing.assert_allclose(value_scrambled, value, **TOL)
    np.testing.assert_allclose(grad_scrambled[~masked], grad[~masked], **TOL)
    assert np.all(grad_scrambled[masked] == 0.0)
    if isinstance(loss, SoftmaxGHM):
        reference = factory()
        reference(Y_GROUP, X_GROUP)
        np.testing.assert_allclose(loss.accumulated_counts, reference.accumulated_counts)


def test_all_entries_masked_gives_zero_loss_and_gradient():
    labels = -np.ones_like(Y)
    for factory in BINARY_FACTORIES.values():
        value, grad = value_and_grad(factory(), labels, X)
        assert value == 0.0 and np.all(grad == 0.0)


EXTREME_LABELS = np.array([[1, 1, 0, 0, -1], [0, 1, 1, 0, 0]], "float32")
EXTREME_LOGITS = np.array([[100, -100, 100, -100, 100], [-100, 100, -100, 100, 0]], "float32")


@pytest.mark.parametrize("name", sorted(BINARY_FACTORIES))
def test_extreme_logits_give_finite_loss_and_gradients_binary(name):
    value, grad = value_and_grad(BINARY_FACTORIES[name](), EXTREME_LABELS, EXTREME_LOGITS)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", sorted(GROUP_FACTORIES))
def test_extreme_logits_give_finite_loss_and_gradients_group(name):
    logits = np.array([[100, -100, 0, 0], [-100, 100, 50, -50], [100, 100, -100, -100]], "float32")
    value, grad = value_and_grad(GROUP_FACTORIES[name](), np.array([0, 0, 2], "int32"), logits)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_extreme_logits_values_match_stable_reference():
    # Wrong-and-confident entries cost |logit|, right-and-confident ones ~0.
    labels = np.array([[1, 0, 1, 0]], "float32")
    logits = np.array([[-100, 100, 100, -100]], "float32")
    np.testing.assert_allclose(float(BinaryCrossEntropy()(labels, logits)), 50.0, **TOL)
    # Focal with gamma 2: the wrong entries keep a factor (1 - p_t)^2 = 1.
    focal = FocalLoss(gamma=2.0, alpha=-1.0)
    np.testing.assert_allclose(float(focal(labels, logits)), 50.0, **TOL)
    # ASL clamps log at eps: a wrong positive costs -log(1e-8); a wrong
    # negative costs (1 - clip)^4 * -log(clip).
    asl = AsymmetricLoss(gamma_pos=0.0, gamma_neg=4.0, clip=0.05)
    expected = (-np.log(1e-8) + 0.95**4 * -np.log(0.05)) / 4
    np.testing.assert_allclose(float(asl(labels, logits)), expected, **TOL)


def test_sample_weight_is_rejected():
    with pytest.raises(ValueError, match="label -1"):
        BinaryCrossEntropy()(Y, X, sample_weight=np.ones(4))


# ----------------------------------------------------------- positive weights


def test_positive_weights_from_labels_counts_valid_entries_and_clips():
    labels = np.array(
        [
            [1, 0, 0, 1, -1],
            [0, 0, 0, 1, -1],
            [0, 0, -1, 1, 1],
            [0, -1, -1, 0, -1],
        ]
    )
    labels = np.concatenate([labels, np.zeros((150, 5), "int64")])
    weights = positive_weights_from_labels(labels)
    # class 0: 153 negatives / 1 positive -> clipped to 100; classes 1, 2: no
    # positives -> 1; class 3: 151 / 3 unclipped; class 4: 150 / 1 -> 100.
    np.testing.assert_allclose(weights, [100.0, 1.0, 1.0, 151 / 3, 100.0])
    mostly_positive = np.array([[1, 1], [1, 0], [1, -1]])
    np.testing.assert_allclose(positive_weights_from_labels(mostly_positive), [1.0, 1.0])
    balanced = np.array([[1, 1], [0, 0], [0, 0], [0, 0]])
    np.testing.assert_allclose(positive_weights_from_labels(balanced), [3.0, 3.0])


# ----------------------------------------------------------------- builders


def test_build_loss_reads_each_family_settings():
    focal = build_loss(config(loss="focal", focal_gamma=1.5, focal_alpha=-1.0, label_smoothing=0.1))
    assert isinstance(focal, FocalLoss)
    assert (focal.gamma, focal.alpha, focal.label_smoothing) == (1.5, -1.0, 0.1)
    ghm = build_loss(config(loss="ghm", ghm_bins=12, ghm_momentum=0.5))
    assert isinstance(ghm, GHMCLoss) and (ghm.bins, ghm.momentum) == (12, 0.5)
    asl = build_loss(config(loss="asl", asl_gamma_pos=1.0, asl_gamma_neg=3.0, asl_clip=0.1))
    assert isinstance(asl, AsymmetricLoss)
    assert (asl.gamma_pos, asl.gamma_neg, asl.clip) == (1.0, 3.0, 0.1)
    bce = build_loss(types.SimpleNamespace(loss="bce", label_smoothing=0.0, pos_weight=[2.0, 1.0],
                                             unknown_labels="ignore"))
    assert isinstance(bce, BinaryCrossEntropy) and bce.pos_weight == [2.0, 1.0]


def test_build_loss_auto_pos_weight_uses_train_labels():
    labels = np.array([[1, 0], [0, 0], [0, 1], [0, -1]])
    loss = build_loss(config(pos_weight="auto"), train_labels=labels)
    assert loss.pos_weight == positive_weights_from_labels(labels) == [3.0, 2.0]
    with pytest.raises(ValueError, match="train_labels"):
        build_loss(config(pos_weight="auto"))
    with pytest.raises(ValueError, match="'auto'"):
        build_loss(config(pos_weight="balanced"), train_labels=labels)


def test_unknown_loss_name_is_rejected_at_config_load_quoting_allowed_ones():
    # the config's Literal holds the names of LOSSES; the builders do not check them again
    with pytest.raises(ConfigError, match=r"'hinge'.*\[('(asl|bce|focal|ghm|hill|splc|llr|epr)'(, )?){8}\]"):
        load_config(["loss=hinge"])


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_family_setting_reaches_its_loss(name):
    # every setting `<loss>_<argument>` is passed on, by name, as `argument` of the loss: none may be lost
    prefix = f"{name}_"
    settings = config(loss=name)
    family = {f.name[len(prefix):]: getattr(settings, f.name) for f in dataclasses.fields(LossSettings)
              if f.name.startswith(prefix)}
    assert all(argument in inspect.signature(LOSSES[name]).parameters for argument in family)
    assert family_arguments(settings) == family
    if name in GROUP_LOSSES:  # the one-of-K form takes all of them but focal's alpha and ASL's clip
        one_of_k = family_arguments(settings, one_of_k=True)
        assert set(one_of_k) == set(family) - {"alpha", "clip"}
        assert all(argument in inspect.signature(GROUP_LOSSES[name]).parameters for argument in one_of_k)


def test_loss_settings_defaults_are_the_config_defaults():
    assert LossSettings() == loss_settings(Config())


@pytest.mark.parametrize("name", sorted(GROUP_LOSSES))  # the partial-label losses have none
def test_build_group_losses_gives_one_instance_per_group(name):
    losses = build_group_losses(config(loss=name, label_smoothing=0.1), {"colour": 5, "shape": 3})
    assert set(losses) == {"colour", "shape"}
    assert all(isinstance(loss, GROUP_LOSSES[name]) for loss in losses.values())
    assert losses["colour"] is not losses["shape"]
    assert losses["colour"].label_smoothing == 0.1
    with pytest.raises(ValueError, match="at least 2"):
        build_group_losses(config(loss=name), {"flag": 1})


def test_invalid_arguments_quote_the_value():
    with pytest.raises(ValueError, match="gamma=-1"):
        FocalLoss(gamma=-1)
    with pytest.raises(ValueError, match="momentum=1.0"):
        GHMCLoss(momentum=1.0)
    with pytest.raises(ValueError, match="clip=1.5"):
        AsymmetricLoss(clip=1.5)
    with pytest.raises(ValueError, match="label_smoothing=1.0"):
        SoftmaxCrossEntropy(label_smoothing=1.0)
    with pytest.raises(ValueError, match="accumulated_counts"):
        GHMCLoss(bins=3, accumulated_counts=[1.0, 2.0])


# ------------------------------------------------------ config and save/load


ALL_FACTORIES = {**BINARY_FACTORIES, **GROUP_FACTORIES}


def inputs_for(loss):
    if loss.name.startswith("softmax"):
        return Y_GROUP, X_GROUP
    return Y, X


@pytest.mark.parametrize("name", sorted(ALL_FACTORIES))
def test_get_config_round_trip(name):
    loss = ALL_FACTORIES[name]()
    y, x = inputs_for(loss)
    loss(y, x)  # moves GHM state away from zeros
    clone = type(loss).from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()
    np.testing.assert_allclose(float(clone(y, x)), float(loss(y, x)), **TOL)


# One configuration per class keeps the slow save/load round trips few.
SAVE_LOAD_NAMES = sorted(n for n in ALL_FACTORIES if not n.endswith(("gamma0", "noclip")))


@pytest.mark.parametrize("name", SAVE_LOAD_NAMES)
def test_compiled_model_saves_and_loads_with_loss(name, tmp_path):
    loss = ALL_FACTORIES[name]()
    y, _ = inputs_for(loss)
    model = tiny_model(4 if loss.name.startswith("softmax") else 5)
    model.compile(optimizer="sgd", loss=loss)
    features = np.random.default_rng(3).normal(size=(len(y), 3)).astype("float32")
    model.fit(features, y, batch_size=len(y), epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded.loss) is type(loss)
    assert loaded.loss.get_config() == loss.get_config()
    logits = model.predict(features, verbose=0)
    np.testing.assert_allclose(float(loaded.loss(y, logits)), float(loss(y, logits)), **TOL)


def test_ghm_state_moves_during_fit_and_survives_save_load(tmp_path):
    loss = GHMCLoss(bins=10, momentum=0.75)
    model = tiny_model(5)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss, jit_compile=True)
    rng = np.random.default_rng(4)
    features = rng.normal(size=(12, 3)).astype("float32")
    labels = rng.integers(-1, 2, size=(12, 5)).astype("float32")
    history = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: history.append(loss.accumulated_counts)
    )
    model.fit(features, labels, batch_size=4, epochs=2, verbose=0, callbacks=[record])
    assert np.any(history[0] != 0.0)
    assert np.any(history[1] != history[0])
    # Three steps of 4 x 5 entries: the average counts stay below 20.
    assert history[1].sum() <= 20.0
    model.save(tmp_path / "ghm.keras")
    loaded = keras.saving.load_model(tmp_path / "ghm.keras")
    np.testing.assert_array_equal(loaded.loss.accumulated_counts, loss.accumulated_counts)


# -------------------------------------------------------------- distribution

DISTRIBUTED_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from multi_label.losses import BinaryCrossEntropy, GHMCLoss

    rng = np.random.default_rng(5)
    labels = rng.integers(-1, 2, size=(8, 6)).astype("float32")
    labels[:4, :3] = -1  # replicas see different numbers of valid entries
    logits = rng.normal(scale=3.0, size=(8, 6)).astype("float32")
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for make in (BinaryCrossEntropy, lambda: GHMCLoss(bins=10, momentum=0.75)):
        single = make()
        expected = [float(single(labels, logits)) for _ in range(2)]
        with strategy.scope():
            loss = make()
        dataset = tf.data.Dataset.from_tensor_slices((labels, logits)).batch(8)
        batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
        step = tf.function(lambda y, x: strategy.reduce("SUM", strategy.run(loss, (y, x)), None))
        got = [float(step(*batch)) for _ in range(2)]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        if hasattr(loss, "accumulated_counts"):
            np.testing.assert_allclose(
                loss.accumulated_counts, single.accumulated_counts, rtol=1e-6
            )

    # Through Keras: the same fit on one device and on two replicas must give
    # the same losses and GHM state, since each replica divides by the global
    # valid count and the trainer sums the replicas' gradients.
    import keras

    features = rng.normal(size=(16, 3)).astype("float32")
    targets = rng.integers(-1, 2, size=(16, 6)).astype("float32")

    def fit(scope):
        with scope:
            keras.utils.set_random_seed(0)
            inputs = keras.Input((3,))
            model = keras.Model(inputs, keras.layers.Dense(6)(inputs))
            loss = GHMCLoss(bins=10, momentum=0.75)
            model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss, jit_compile=False)
        history = model.fit(features, targets, batch_size=8, epochs=2, shuffle=False, verbose=0)
        return history.history["loss"], loss.accumulated_counts

    single_losses, single_counts = fit(tf.name_scope("single"))
    mirrored_losses, mirrored_counts = fit(strategy.scope())
    np.testing.assert_allclose(mirrored_losses, single_losses, rtol=1e-4)
    np.testing.assert_allclose(mirrored_counts, single_counts, rtol=1e-4)
    assert np.any(single_counts > 0)
    print("distributed ok")
    """
)


# A fresh interpreter is needed to split the CPU into two devices, and its
# TensorFlow start-up dominates the cost, hence the marker.
@pytest.mark.slow
def test_global_batch_mean_and_ghm_state_under_mirrored_strategy():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, "-c", DISTRIBUTED_SCRIPT]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed ok" in result.stdout
