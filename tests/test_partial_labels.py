"""Partial and missing labels: unknown_labels (ignore, negative, weighted) and the losses hill, splc, llr and epr,
each against a NumPy transcription of its reference code; the epoch they depend on, through fit and a resume."""

import csv
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from multi_label.losses import (
    LOSSES,
    UNKNOWN_LABELS,
    AsymmetricLoss,
    BinaryCrossEntropy,
    ExpectedPositiveRegularized,
    FocalLoss,
    GHMCLoss,
    HillLoss,
    LargeLossRejection,
    LossSettings,
    SelfPacedLossCorrection,
    build_group_losses,
    build_loss,
)
from multi_label.losses._base import PARTIAL_BCE_ALPHA, PARTIAL_BCE_BETA, PARTIAL_BCE_GAMMA
from multi_label.training.callbacks import LossEpoch, ValidationMAP, training_callbacks
from multi_label.training.run_state import restore_run_state, run_state

TOL = dict(rtol=1e-5, atol=1e-5)

# 1 positive, 0 confirmed negative, -1 unknown; row 1 is fully known, row 3 has a single known label.
Y = np.array(
    [
        [1, 0, -1, -1, 1, 0],
        [0, 1, 0, 0, 0, 1],
        [-1, -1, 1, 0, -1, -1],
        [-1, -1, -1, 1, -1, -1],
    ],
    dtype="float32",
)
X = np.random.default_rng(7).uniform(-4, 4, size=Y.shape).astype("float32")
# The papers' setting: every label not observed positive is unknown (1 / -1 only).
Y_MISSING = np.where(Y == 1, 1.0, -1.0).astype("float32")


# ---------------------------------------------------------------- references
# Independent float64 transcriptions of the reference code, written for clarity.


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, "float64")))


def bce(t, x):
    p = sigmoid(x)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def partial_bce(y, x, ls=0.0):
    """Durand et al.'s partial-BCE, as the public PyTorch PartialBCE(alpha, beta, gamma) computes it."""
    known = y >= 0
    t = np.where(known, y, 0) * (1 - ls) + 0.5 * ls
    loss = bce(t, x) * known
    p = known.sum(1) / y.shape[1]
    g = -40 / 9 * p**1.0 + 49 / 9  # g(1) = 1, g(0.1) = 5, gamma = 1
    return ((g / y.shape[1]) * loss.sum(1)).mean()


def authors_hill(logits, targets, lamb=1.5, margin=1.0, gamma=2.0):
    """robust-loss-mlml, src/loss_functions/losses.py, Hill.forward (reduction 'sum'); targets in {0, 1}."""
    pred_pos, pred_neg = sigmoid(logits - margin), sigmoid(logits)
    focal_weight = ((1 - pred_pos) * targets + (1 - targets)) ** gamma
    los_pos = targets * np.log(pred_pos)
    los_neg = (1 - targets) * -(lamb - pred_neg) * pred_neg**2
    return (-(los_pos + los_neg) * focal_weight).sum()


def authors_splc(logits, targets, epoch, tau=0.6, change_epoch=1, margin=1.0, gamma=2.0):
    """robust-loss-mlml, src/loss_functions/losses.py, SPLC.forward (reduction 'sum'); targets in {0, 1}."""
    logits = np.where(targets == 1, logits - margin, logits)
    if epoch >= change_epoch:
        targets = np.where(sigmoid(logits) > tau, 1.0, targets)
    pred = sigmoid(logits)
    focal_weight = ((1 - pred) * targets + pred * (1 - targets)) ** gamma
    los_pos = targets * np.log(pred)
    los_neg = (1 - targets) * np.log(1 - pred)
    return (-(los_pos + los_neg) * focal_weight).sum()


def authors_llr(logits, observed, clean_rate):
    """LargeLossMatters, losses.py, compute_batch_loss with mod_scheme 'LL-R'; observed in {1, 0 = unobserved}."""
    loss_matrix = bce(observed, logits)
    if clean_rate == 1:
        return loss_matrix.mean()
    k = math.ceil(observed.size * (1 - clean_rate))
    unobserved_loss = (observed == 0) * loss_matrix
    kth_largest = np.sort(unobserved_loss.ravel())[::-1][k - 1]
    return np.where(unobserved_loss < kth_largest, loss_matrix, 0.0).mean()


def authors_epr(logits, observed, expected):
    """single-positive-multi-label, losses.py, loss_epr + compute_batch_loss; observed in {1, 0 = unobserved}.

    Without the reference's 1e-5 inside the log (the loss under test uses the exact softplus form).
    """
    preds = sigmoid(logits)
    batch, classes = preds.shape
    loss_mtx = np.where(observed == 1, -np.log(preds), 0.0)
    reg = (preds.sum(1).mean(0) - expected) ** 2 / classes**2
    return (loss_mtx / (batch * classes)).sum() + reg


def ours_with_negatives(y, x, positive, negative, unknown, ls=0.0):
    """Mean over all entries: known t * positive + (1 - t) * negative, unknown entries their own term."""
    t = np.where(y >= 0, y, 0) * (1 - ls) + 0.5 * ls
    return np.where(y >= 0, t * positive + (1 - t) * negative, unknown).mean()


def focal_positive(x, gamma, margin=0.0):
    p = sigmoid(x - margin)
    return (1 - p) ** gamma * -np.log(p)


def focal_negative(x, gamma):
    p = sigmoid(x)
    return p**gamma * -np.log(1 - p)


def value_and_grad(loss, y, x):
    logits = tf.Variable(x)
    with tf.GradientTape() as tape:
        value = loss(tf.constant(y), logits)
    return float(value), tape.gradient(value, logits).numpy()


# ------------------------------------------------------------ unknown_labels


def test_partial_bce_constants_are_the_papers_g():
    def g(p):
        return PARTIAL_BCE_ALPHA * p**PARTIAL_BCE_GAMMA + PARTIAL_BCE_BETA

    assert PARTIAL_BCE_GAMMA == 1.0
    assert g(1.0) == pytest.approx(1.0) and g(0.1) == pytest.approx(5.0)


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_weighted_bce_is_partial_bce(ls):
    value = BinaryCrossEntropy(unknown_labels="weighted", label_smoothing=ls)(Y, X)
    np.testing.assert_allclose(float(value), partial_bce(Y, X, ls), **TOL)


@pytest.mark.parametrize("make", [BinaryCrossEntropy, FocalLoss, AsymmetricLoss])
def test_weighted_scales_each_images_known_mean_by_g_of_its_share(make):
    # per image: g(p) * p * (mean over its known labels), then the mean over images
    shares = (Y >= 0).mean(1)
    rows = [float(make()(Y[i:i + 1], X[i:i + 1])) for i in range(len(Y))]
    expected = np.mean([(PARTIAL_BCE_ALPHA * s + PARTIAL_BCE_BETA) * s * r for s, r in zip(shares, rows)])
    np.testing.assert_allclose(float(make(unknown_labels="weighted")(Y, X)), expected, **TOL)


@pytest.mark.parametrize("make", [BinaryCrossEntropy, FocalLoss, AsymmetricLoss, lambda **a: GHMCLoss(momentum=0, **a)])
def test_negative_takes_every_unknown_label_for_a_zero(make):
    value = make(unknown_labels="negative")(Y, X)
    np.testing.assert_allclose(float(value), float(make()(np.maximum(Y, 0), X)), **TOL)
    np.testing.assert_allclose(float(BinaryCrossEntropy(unknown_labels="negative")(Y, X)),
                               bce(np.maximum(Y, 0), X).mean(), **TOL)


@pytest.mark.parametrize("mode", sorted(UNKNOWN_LABELS))
@pytest.mark.parametrize("make", [BinaryCrossEntropy, FocalLoss, AsymmetricLoss])
def test_fully_known_labels_give_the_same_loss_in_every_mode(mode, make):
    known = Y[1:2].repeat(3, axis=0)
    np.testing.assert_allclose(float(make(unknown_labels=mode)(known, X[:3])), float(make()(known, X[:3])), **TOL)


@pytest.mark.parametrize("mode", ["ignore", "weighted"])
def test_unknown_logits_have_no_effect_where_they_are_left_out(mode):
    scrambled = X.copy()
    scrambled[Y < 0] = np.where(np.arange((Y < 0).sum()) % 2, np.nan, 1e4)
    value, grad = value_and_grad(FocalLoss(unknown_labels=mode), Y, X)
    value_scrambled, grad_scrambled = value_and_grad(FocalLoss(unknown_labels=mode), Y, scrambled)
    np.testing.assert_allclose(value_scrambled, value, **TOL)
    assert np.all(grad_scrambled[Y < 0] == 0.0)
    np.testing.assert_allclose(grad_scrambled[Y >= 0], grad[Y >= 0], **TOL)


def test_unknown_labels_must_be_a_known_mode():
    with pytest.raises(ValueError, match="unknown_labels='guess'"):
        BinaryCrossEntropy(unknown_labels="guess")


# ------------------------------------------------------------------- hill


def test_hill_is_the_authors_hill_when_every_non_positive_is_unknown():
    value = HillLoss()(Y_MISSING, X)
    np.testing.assert_allclose(float(value), authors_hill(X, (Y == 1).astype("float64")) / Y.size, **TOL)


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_hill_gives_confirmed_negatives_the_plain_focal_term(ls):
    loss = HillLoss(lamb=2.0, margin=0.5, gamma=1.0, label_smoothing=ls)
    p = sigmoid(X)
    expected = ours_with_negatives(Y, X, focal_positive(X, 1.0, 0.5), focal_negative(X, 1.0), (2.0 - p) * p**2, ls)
    np.testing.assert_allclose(float(loss(Y, X)), expected, **TOL)


# ------------------------------------------------------------------- splc


@pytest.mark.parametrize("epoch", [0, 1, 3])
def test_splc_is_the_authors_splc_when_every_non_positive_is_unknown(epoch):
    loss = SelfPacedLossCorrection()
    loss.set_epoch(epoch)
    expected = authors_splc(X, (Y == 1).astype("float64"), epoch) / Y.size
    np.testing.assert_allclose(float(loss(Y_MISSING, X)), expected, **TOL)


def test_splc_switches_at_its_start_epoch_and_never_corrects_confirmed_negatives():
    assert np.any((sigmoid(X) > 0.6) & (Y < 0)) and np.any((sigmoid(X) > 0.6) & (Y == 0))  # both kinds to correct
    loss = SelfPacedLossCorrection(start_epoch=2)
    values = []
    for epoch in range(4):
        loss.set_epoch(epoch)
        values.append(float(loss(Y, X)))
    assert values[0] == values[1] and values[2] == values[3] and values[1] != values[2]
    before = ours_with_negatives(Y, X, focal_positive(X, 2.0, 1.0), focal_negative(X, 2.0), focal_negative(X, 2.0))
    unknown = np.where(sigmoid(X) > 0.6, focal_positive(X, 2.0), focal_negative(X, 2.0))  # no margin, as the authors'
    after = ours_with_negatives(Y, X, focal_positive(X, 2.0, 1.0), focal_negative(X, 2.0), unknown)
    np.testing.assert_allclose(values[:3:2], [before, after], **TOL)


# -------------------------------------------------------------------- llr

# 24 entries; rate 1/8 per epoch is exact in binary, so the authors' clean_rate (1 minus the rate after
# every epoch) gives k = ceil(24 * rate) without rounding: 3, 6, 9 at epochs 1, 2, 3.
LLR_RATE = 0.125


@pytest.mark.parametrize("epoch", [0, 1, 2, 3])
def test_llr_is_the_authors_ll_r_when_every_non_positive_is_unknown(epoch):
    clean_rate = 1.0
    for _ in range(epoch):
        clean_rate -= LLR_RATE
    loss = LargeLossRejection(rate_per_epoch=LLR_RATE)
    loss.set_epoch(epoch)
    expected = authors_llr(X, (Y == 1).astype("float64"), clean_rate)
    np.testing.assert_allclose(float(loss(Y_MISSING, X)), expected, **TOL)


@pytest.mark.parametrize("epoch, rejected", [(0, 0), (1, 3), (3, 9), (4, 11), (20, 11)])  # at most the 11 unknown
def test_llr_rejects_exactly_the_k_largest_unknown_losses(epoch, rejected):
    loss = LargeLossRejection(rate_per_epoch=LLR_RATE)
    loss.set_epoch(epoch)
    value, grad = value_and_grad(loss, Y, X)
    unknown = Y < 0
    entry = bce(np.maximum(Y, 0), X)
    largest = np.zeros_like(unknown)
    largest.flat[np.argsort(-np.where(unknown, entry, -1).ravel())[:rejected]] = True
    assert np.array_equal(grad == 0.0, largest)  # known (0 and 1) entries are never rejected
    np.testing.assert_allclose(value, np.where(largest, 0.0, entry).mean(), **TOL)


def test_llr_k_is_not_rounded_up_past_an_integer_product():
    # 500 entries at a rate of 0.002 reject 1, though 500 * float32(0.002) is a hair above 1
    loss = LargeLossRejection(rate_per_epoch=0.002)
    loss.set_epoch(1)
    _, grad = value_and_grad(loss, -np.ones((5, 100), "float32"), np.random.default_rng(1).normal(size=(5, 100))
                             .astype("float32"))
    assert (grad == 0.0).sum() == 1


# -------------------------------------------------------------------- epr


def test_epr_is_the_authors_epr_when_every_non_positive_is_unknown():
    value = ExpectedPositiveRegularized(expected_positives=2.0)(Y_MISSING, X)
    np.testing.assert_allclose(float(value), authors_epr(X, (Y == 1).astype("float64"), 2.0), **TOL)


def test_epr_gives_confirmed_negatives_bce_and_unknown_labels_only_the_regulariser():
    loss = ExpectedPositiveRegularized(expected_positives=1.5)
    p = sigmoid(X)
    mean_positives = p.sum(1).mean()
    regulariser = (mean_positives - 1.5) ** 2 / Y.shape[1] ** 2
    data = np.where(Y >= 0, bce(np.maximum(Y, 0), X), 0.0).sum() / Y.size
    value, grad = value_and_grad(loss, Y, X)
    np.testing.assert_allclose(value, data + regulariser, **TOL)
    # at an unknown entry the gradient is the regulariser's alone
    expected = 2 * (mean_positives - 1.5) / Y.shape[1] ** 2 * p * (1 - p) / Y.shape[0]
    np.testing.assert_allclose(grad[Y < 0], expected[Y < 0], **TOL)
    moved = X.copy()
    moved[Y < 0] += 1.0
    moved_reg = (sigmoid(moved).sum(1).mean() - 1.5) ** 2 / Y.shape[1] ** 2
    np.testing.assert_allclose(float(loss(Y, moved)), data + moved_reg, **TOL)


def test_epr_measures_its_expected_positives_from_the_training_labels():
    loss = build_loss(LossSettings(loss="epr"), train_labels=Y)
    assert loss.expected_positives == pytest.approx(6 / 4)  # 6 known positives on 4 images
    assert build_loss(LossSettings(loss="epr", epr_expected_positives=2.9)).expected_positives == 2.9
    with pytest.raises(ValueError, match="train_labels"):
        build_loss(LossSettings(loss="epr"))
    with pytest.raises(ValueError, match="no positive"):
        build_loss(LossSettings(loss="epr"), train_labels=np.zeros((3, 4)))


# --------------------------------------------------------- build, save, load

NEW = {
    "hill": lambda: HillLoss(lamb=1.8, margin=0.7, gamma=1.5, label_smoothing=0.1),
    "splc": lambda: SelfPacedLossCorrection(tau=0.55, start_epoch=0, pos_weight=[2.0] * 6),
    "llr": lambda: LargeLossRejection(rate_per_epoch=0.1, neg_weight=[0.5] * 6),
    "epr": lambda: ExpectedPositiveRegularized(expected_positives=1.2),
    "bce_weighted": lambda: BinaryCrossEntropy(unknown_labels="weighted"),
    "ghm_negative": lambda: GHMCLoss(bins=5, unknown_labels="negative"),
}


def test_build_loss_passes_unknown_labels_and_the_new_families_settings():
    assert build_loss(LossSettings(loss="focal", unknown_labels="weighted")).unknown_labels == "weighted"
    hill = build_loss(LossSettings(loss="hill", hill_lamb=2.0, hill_margin=0.5, hill_gamma=1.0))
    assert (type(hill), hill.lamb, hill.margin, hill.gamma) == (HillLoss, 2.0, 0.5, 1.0)
    splc = build_loss(LossSettings(loss="splc", splc_tau=0.7, splc_margin=0.5, splc_gamma=1.0, splc_start_epoch=3))
    assert (splc.tau, splc.margin, splc.gamma, splc.start_epoch) == (0.7, 0.5, 1.0, 3)
    assert build_loss(LossSettings(loss="llr", llr_rate_per_epoch=0.004)).rate_per_epoch == 0.004
    with pytest.raises(ValueError, match="no one-of-K version"):
        build_group_losses(LossSettings(loss="hill"), {"colour": 3})


@pytest.mark.parametrize("name", sorted(NEW))
def test_get_config_round_trip(name):
    loss = NEW[name]()
    clone = type(loss).from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()
    np.testing.assert_allclose(float(clone(Y, X)), float(NEW[name]()(Y, X)), **TOL)


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(Y.shape[1])(inputs))


FEATURES = np.random.default_rng(3).normal(size=(len(Y), 3)).astype("float32")


@pytest.mark.parametrize("name", sorted(NEW))
def test_compiled_model_saves_and_loads_with_loss(name, tmp_path):
    loss = NEW[name]()
    model = tiny_model()
    model.compile(optimizer="sgd", loss=loss)
    model.fit(FEATURES, Y, batch_size=len(Y), epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded.loss) is type(loss) and loaded.loss.get_config() == loss.get_config()
    logits = model.predict(FEATURES, verbose=0)
    np.testing.assert_allclose(float(loaded.loss(Y, logits)), float(loss(Y, logits)), **TOL)


@pytest.mark.parametrize("name", sorted(set(LOSSES) - {"bce", "focal", "ghm", "asl"}))
def test_every_partial_label_loss_trains_through_build_loss(name):
    loss = build_loss(LossSettings(loss=name, splc_start_epoch=0, llr_rate_per_epoch=0.5), train_labels=Y)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss, jit_compile=True)
    before = model.get_weights()
    if name in ("splc", "llr"):
        loss.set_epoch(1)  # the correction / rejection in force
    history = model.fit(FEATURES, Y, batch_size=2, epochs=1, verbose=0).history["loss"]
    assert np.isfinite(history[0]) and history[0] > 0
    assert all(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


# ------------------------------------------------------------- the epoch


def test_the_epoch_callback_comes_first_for_epoch_dependent_losses_only(tmp_path):
    def callbacks(loss):
        return training_callbacks(str(tmp_path / "run"), str(tmp_path / "logs"), str(tmp_path / "backup"), loss,
                                  ValidationMAP(None))

    splc = SelfPacedLossCorrection()
    first = callbacks(splc)[0]
    assert isinstance(first, LossEpoch) and first.losses == [splc]
    assert not any(isinstance(c, LossEpoch) for c in callbacks(BinaryCrossEntropy()))
    assert not any(isinstance(c, LossEpoch) for c in callbacks(build_group_losses(LossSettings(), {"a": 2})))


def test_the_backup_state_keeps_the_epoch():
    loss = LargeLossRejection()
    loss.set_epoch(3)
    state = run_state(loss)
    assert state["loss"] == [3.0]
    resumed = LargeLossRejection()
    restore_run_state(resumed, None, state)
    assert resumed.epoch == 3


class EpochRecorder(keras.callbacks.Callback):
    """The loss's epoch at every batch, by epoch."""

    def __init__(self, loss):
        super().__init__()
        self.loss, self.seen = loss, {}

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.setdefault(self.epoch, set()).add(self.loss.epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


LABELS = np.random.default_rng(5).choice([1.0, 0.0, -1.0], p=[0.3, 0.2, 0.5], size=(16, 6)).astype("float32")
INPUTS = np.random.default_rng(6).normal(size=(16, 3)).astype("float32")


def fit_epochs(make, weights, initial_epoch, epochs, tell=True):
    """Losses per epoch and the epochs the loss saw, fitting a fresh model and loss from `weights`."""
    loss = make()
    model = tiny_model()
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss)
    recorder = EpochRecorder(loss)
    history = model.fit(INPUTS, LABELS, batch_size=8, epochs=epochs, initial_epoch=initial_epoch, shuffle=False,
                        verbose=0, callbacks=([LossEpoch([loss])] if tell else []) + [recorder])
    return history.history["loss"], recorder.seen, model.get_weights()


@pytest.mark.parametrize("make", [lambda: SelfPacedLossCorrection(tau=0.5, start_epoch=2),
                                  lambda: LargeLossRejection(rate_per_epoch=0.1)])
def test_a_fit_resumed_at_its_initial_epoch_computes_the_losses_of_an_uninterrupted_one(make):
    start = tiny_model().get_weights()
    straight, seen, _ = fit_epochs(make, start, 0, 4)
    assert seen == {0: {0}, 1: {1}, 2: {2}, 3: {3}}
    first, _, halfway = fit_epochs(make, start, 0, 2)
    resumed, seen, _ = fit_epochs(make, halfway, 2, 4)  # a new process: a fresh loss at epoch 0
    assert seen == {2: {2}, 3: {3}}
    np.testing.assert_allclose(first + resumed, straight, rtol=1e-6)
    stuck, _, _ = fit_epochs(make, halfway, 2, 4, tell=False)  # without the callback the epoch stays 0
    assert not np.allclose(stuck, straight[2:], rtol=1e-4)


# ------------------------------------------------------ a run killed and resumed


@pytest.fixture(scope="module")
def partial_labels(tmp_path_factory):
    """Demo data whose train split hides half of its labels (-1), as run.py builds it for TINY."""
    from dataset.demo import build_demo_data

    folder = tmp_path_factory.mktemp("partial")
    paths = build_demo_data(str(folder / "data" / "demo"), 160, seed=42)
    with open(paths["train"]) as f:
        rows = list(csv.reader(f))
    rng = np.random.default_rng(0)
    for row in rows[1:]:
        row[1:] = ["-1" if rng.random() < 0.5 else value for value in row[1:]]
    with open(folder / "data" / "demo" / "train_partial.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return folder


LLR_ARGS = ["epochs=3", "loss='llr'", "llr_rate_per_epoch=0.1", "deterministic=True", "warmup_epochs=0.5",
            "train_labels='data/demo/train_partial.csv'", "val_labels=''", "test_labels=''", "run_name=r"]


@pytest.mark.slow  # two training runs and a killed one through run.py: about 2 minutes on 2 cores
def test_llr_run_killed_and_resumed_has_the_losses_of_an_uninterrupted_one(partial_labels, tmp_path):
    import shutil

    from test_end_to_end import run
    from test_resume_state import backup, history, kill_when

    straight = run(partial_labels, *LLR_ARGS)
    assert straight.returncode == 0, straight.stdout[-3000:] + straight.stderr[-3000:]
    shutil.copytree(partial_labels / "data", tmp_path / "data")
    meta, _ = kill_when(tmp_path, LLR_ARGS, lambda m: m["epoch"] == 1)
    assert meta["extra"]["loss"] == [0.0]  # the backup after epoch 1 (index 0) holds the loss's epoch
    resumed = run(tmp_path, *LLR_ARGS)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Resuming from the backup after epoch 1" in resumed.stdout
    want, got = history(partial_labels / "models" / "r"), history(tmp_path / "models" / "r")
    assert sorted(got) == sorted(want) == [0, 1, 2]
    np.testing.assert_allclose([float(got[e]["loss"]) for e in range(3)], [float(want[e]["loss"]) for e in range(3)],
                               rtol=1e-5)
    # both ended in epoch index 2, rejecting 20% of each batch's entries (at most its unknown ones)
    assert backup(partial_labels / "models" / "r")[0]["extra"]["loss"] == [2.0]
    assert backup(tmp_path / "models" / "r")[0]["extra"]["loss"] == [2.0]


# -------------------------------------------------------------- distribution

DISTRIBUTED_SCRIPT = """
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from multi_label.losses import BinaryCrossEntropy, ExpectedPositiveRegularized, HillLoss

rng = np.random.default_rng(5)
labels = rng.choice([1.0, 0.0, -1.0], size=(16, 6)).astype("float32")
labels[:8, :4] = -1  # the replicas see different numbers of known labels
features = rng.normal(size=(16, 3)).astype("float32")
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
makes = (lambda: BinaryCrossEntropy(unknown_labels="weighted"), lambda: ExpectedPositiveRegularized(2.0), HillLoss)


def fit(scope, make):
    with scope:
        keras.utils.set_random_seed(0)
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(6)(inputs))
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=make(), jit_compile=False)
    history = model.fit(features, labels, batch_size=16, epochs=3, shuffle=False, verbose=0)
    return history.history["loss"], model.get_weights()


for make in makes:
    single_losses, single_weights = fit(tf.name_scope("single"), make)
    mirrored_losses, mirrored_weights = fit(strategy.scope(), make)
    np.testing.assert_allclose(mirrored_losses, single_losses, rtol=1e-4)
    for a, b in zip(mirrored_weights, single_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
print("distributed ok")
"""


# A fresh interpreter splits the CPU into two devices; its TensorFlow start-up dominates the cost.
@pytest.mark.slow
def test_weighted_epr_and_hill_give_the_single_device_fit_on_two_replicas():
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-c", DISTRIBUTED_SCRIPT], env=env, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed ok" in result.stdout
