"""Plot each loss and its gradient against the predicted probability.

Run from the repository root:

    python3 learning_notes/figures/plot_losses.py

Writes losses_binary.png (sigmoid losses, positive and negative target) and
losses_softmax.png (one-of-K group losses) into learning_notes/figures/.
Per-entry values come from the losses' own `entry_losses` / `sample_losses`,
so the curves are exactly what training optimises.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

FIGURES = os.path.dirname(os.path.abspath(__file__))
# Lets the script run from a checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(FIGURES)))

from multi_label.losses import (  # noqa: E402
    AsymmetricLoss,
    BinaryCrossEntropy,
    FocalLoss,
    GHMCLoss,
    SoftmaxCrossEntropy,
    SoftmaxFocal,
    SoftmaxGHM,
)

PROBABILITIES = np.linspace(0.002, 0.998, 250)
# GHM weights depend on the whole batch. The plotted points share the batch
# with this many easy entries (gradient norm EASY_NORM), roughly what a batch
# looks like once most labels are learnt.
EASY_ENTRIES = 5000
EASY_NORM = 0.02
NUM_GROUP_CLASSES = 5

BINARY_LOSSES = {
    "BCE": BinaryCrossEntropy(),
    "focal (gamma=2, alpha=0.25)": FocalLoss(gamma=2.0, alpha=0.25),
    "focal (gamma=2, no alpha)": FocalLoss(gamma=2.0, alpha=-1.0),
    "GHM-C (30 bins, easy-heavy batch)": GHMCLoss(bins=30, momentum=0.0),
    "ASL (gamma+=0, gamma-=4, clip=0.05)": AsymmetricLoss(gamma_pos=0.0, gamma_neg=4.0, clip=0.05),
}

GROUP_LOSSES = {
    "softmax CE": SoftmaxCrossEntropy(),
    "softmax focal (gamma=2)": SoftmaxFocal(gamma=2.0),
    "softmax GHM (30 bins, easy-heavy batch)": SoftmaxGHM(bins=30, momentum=0.0),
}


def binary_curves(loss, target):
    """Per-entry loss and |d loss / d logit| at PROBABILITIES for one target."""
    easy_p = 1.0 - EASY_NORM if target == 1 else EASY_NORM
    p = np.concatenate([PROBABILITIES, np.full(EASY_ENTRIES, easy_p)])
    logits = tf.Variable(np.log(p / (1 - p)).astype("float32"))
    targets = tf.fill(logits.shape, float(target))
    valid = tf.ones(logits.shape, bool)
    with tf.GradientTape() as tape:
        per_entry = loss.entry_losses(targets, logits, valid)
        total = tf.reduce_sum(per_entry)
    # Entries are independent given the (constant) GHM weights, so the
    # gradient of the sum is each entry's own gradient.
    grads = tape.gradient(total, logits)
    n = len(PROBABILITIES)
    return per_entry.numpy()[:n], np.abs(grads.numpy()[:n])


def group_logits(p_true):
    """Logits [n, K] whose softmax gives p_true to class 0, the rest shared."""
    p_other = (1 - p_true) / (NUM_GROUP_CLASSES - 1)
    logits = np.zeros((len(p_true), NUM_GROUP_CLASSES))
    logits[:, 0] = np.log(p_true / p_other)
    return logits.astype("float32")


def group_curves(loss):
    """Per-sample loss and |d loss / d true-class logit| against p_true."""
    p_true = np.concatenate([PROBABILITIES, np.full(EASY_ENTRIES, 1.0 - EASY_NORM)])
    logits = tf.Variable(group_logits(p_true))
    one_hot = tf.one_hot(tf.zeros(len(p_true), tf.int32), NUM_GROUP_CLASSES)
    valid = tf.ones(len(p_true), bool)
    with tf.GradientTape() as tape:
        per_sample = loss.sample_losses(one_hot, one_hot, logits, valid)
        total = tf.reduce_sum(per_sample)
    grads = tape.gradient(total, logits)
    n = len(PROBABILITIES)
    return per_sample.numpy()[:n], np.abs(grads.numpy()[:n, 0])


def style_axis(axis, title, ylabel):
    axis.set_title(title, fontsize=10)
    axis.set_xlabel("predicted probability p")
    axis.set_ylabel(ylabel)
    axis.set_yscale("log")
    axis.set_ylim(1e-5, 300)
    axis.grid(True, which="major", alpha=0.3)


def plot_binary(path):
    figure, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    for row, target in enumerate((1, 0)):
        for name, loss in BINARY_LOSSES.items():
            values, grads = binary_curves(loss, target)
            # Dashed: with gamma+=0 ASL's positive curve lies on top of BCE's.
            style = "--" if name.startswith("ASL") else "-"
            axes[row, 0].plot(PROBABILITIES, values, style, label=name)
            axes[row, 1].plot(PROBABILITIES, grads, style, label=name)
        style_axis(axes[row, 0], f"loss, target y={target}", "loss per entry")
        style_axis(axes[row, 1], f"gradient, target y={target}", "|d loss / d logit|")
    axes[0, 0].legend(fontsize=8, loc="lower left")
    figure.suptitle(
        "Sigmoid losses per entry (log scale; ASL is exactly 0 for negatives with p < clip)"
    )
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_group(path):
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for name, loss in GROUP_LOSSES.items():
        values, grads = group_curves(loss)
        axes[0].plot(PROBABILITIES, values, label=name)
        axes[1].plot(PROBABILITIES, grads, label=name)
    style_axis(axes[0], "loss", "loss per sample")
    style_axis(axes[1], "gradient on the true-class logit", "|d loss / d logit_y|")
    for axis in axes:
        axis.set_xlabel(f"probability of the true class (K={NUM_GROUP_CLASSES})")
    axes[0].legend(fontsize=8, loc="lower left")
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    plot_binary(os.path.join(FIGURES, "losses_binary.png"))
    plot_group(os.path.join(FIGURES, "losses_softmax.png"))
    print(f"wrote losses_binary.png and losses_softmax.png to {FIGURES}")
