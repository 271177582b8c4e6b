"""Plots the learning-rate schedules of multi_label.optim.schedules.

Run from the repository root:

    python3 learning_notes/figures/plot_schedule.py

Writes learning_notes/figures/schedules.png. The plateau curve replays two
reductions at made-up epochs (40 and 70): the real ones depend on the
validation metric of a run.
"""

import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from multi_label.optim.schedules import ScheduleSettings, build_schedule  # noqa: E402

STEPS_PER_EPOCH = 100
EPOCHS = 100
PLATEAU_REDUCTIONS = (40, 70)  # illustrative epochs only
OUTPUT = os.path.join(os.path.dirname(__file__), "schedules.png")

CONFIG = dict(
    lr=0.1,
    epochs=EPOCHS,
    warmup_epochs=5.0,  # 5 epochs of linear warmup for every schedule
    warmup_steps=0,
    min_lr=1e-4,
    lr_steps={30: 0.1, 60: 0.01, 90: 0.001},
    lr_decay_rate=0.95,
    plateau_factor=0.1,
    plateau_patience=5,
)


def curve(name):
    """Returns the learning rate at every step for schedule `name`."""
    schedule = build_schedule(ScheduleSettings(lr_schedule=name, **CONFIG), STEPS_PER_EPOCH)
    steps = np.arange(EPOCHS * STEPS_PER_EPOCH)
    if name != "plateau":
        return np.asarray(schedule(steps))
    rates = []
    for epoch in range(EPOCHS):
        if epoch in PLATEAU_REDUCTIONS:
            schedule.state.multiplier.assign(
                schedule.multiplier * CONFIG["plateau_factor"]
            )
        epoch_steps = steps[epoch * STEPS_PER_EPOCH:(epoch + 1) * STEPS_PER_EPOCH]
        rates.append(np.asarray(schedule(epoch_steps)))
    return np.concatenate(rates)


def main():
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(EPOCHS * STEPS_PER_EPOCH) / STEPS_PER_EPOCH
    for name in ("constant", "cosine", "step", "exponential", "plateau"):
        rates = curve(name)
        axes[0].plot(epochs, rates, label=name)
        axes[1].plot(epochs, rates, label=name)
    axes[0].set_title("learning rate (linear scale)")
    axes[1].set_title("learning rate (log scale)")
    axes[1].set_yscale("log")
    for axis in axes:
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle(
        "lr=0.1, 5 warmup epochs, 100 epochs; "
        "plateau reductions at epochs 40 and 70 are illustrative"
    )
    figure.tight_layout()
    figure.savefig(OUTPUT, dpi=110)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
