"""The gradient density that GHM-C saw in a real training run, and the weights it gave.

Run from the repository root after a GHM run, e.g. `python run.py loss=ghm run_name=demo_ghm`:

    python3 learning_notes/figures/plot_ghm_density.py models/demo_ghm [--images 3000]

Two views of the same quantity, the gradient norm g = |sigmoid(logit) - y| of every known label:
- the loss's own moving-average bin counts at the end of training, as saved in the run's crash-safe
  backup (`backup/latest` -> `meta.json`, the state `model.fit` carried from step to step);
- the histogram of g of the trained model (`last.keras`) over `--images` training images.
And the GHM weight of each bin, N / (count * non-empty bins), that the last step applied.
Writes learning_notes/figures/ghm_density_<run name>.png.
"""

import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
FOLDER = os.path.dirname(__file__)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", help="models/<run_name> of a run trained with loss=ghm")
    parser.add_argument("--images", type=int, default=3000, help="training images whose g is histogrammed")
    args = parser.parse_args()

    import dataclasses

    from configs import Config
    from dataset.pipeline import make_dataset
    from dataset.run_splits import load_split
    from multi_label.evaluation.inference import predict_dataset, sigmoid
    from multi_label.tasks.settings import pipeline_settings, split_settings
    from multi_label.trained_run import load_checkpoint
    from multi_label.training.backup import latest_backup

    with open(os.path.join(args.run_dir, "config.json")) as f:
        saved = json.load(f)
    known = {field.name for field in dataclasses.fields(Config)}
    config = dataclasses.replace(Config(), **{k: v for k, v in saved.items() if k in known})
    if config.loss != "ghm":
        sys.exit(f"{args.run_dir} was trained with loss={config.loss!r}, not ghm")
    meta = latest_backup(os.path.join(args.run_dir, "backup"))
    counts = np.asarray(meta["extra"]["loss"][0], np.float64)
    bins = len(counts)

    table = load_split(split_settings(config), "train_labels")
    count = min(args.images, len(table))
    model = load_checkpoint(os.path.join(args.run_dir, "last.keras"))
    logits, labels, _ = predict_dataset(model, make_dataset(table.images[:count], table.labels[:count],
                                                            pipeline_settings(config), training=False))
    valid = labels >= 0
    g = np.abs(sigmoid(logits) - labels)[valid]
    edges = np.linspace(0.0, 1.0, bins + 1)
    edges[-1] += 1e-6  # g = 1 falls in the last bin, as in the loss
    hist = np.histogram(g, edges)[0].astype(np.float64)

    plot(args.run_dir, counts, hist, edges, count, int(valid.sum()), config.ghm_momentum)


def plot(run_dir, counts, hist, edges, count, labels, momentum):
    """Draws the loss state and the trained model's density over the bins, and their GHM weights."""
    bins = len(counts)
    centres = (edges[:-1] + edges[1:]) / 2
    nonempty = max(int((counts > 0).sum()), 1)
    weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1e-12) / nonempty, np.nan)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6.5), sharex=True)
    top.bar(centres, counts / counts.sum(), width=1.0 / bins, alpha=0.6,
            label=f"loss state at the end of training (moving average, momentum {momentum})")
    top.step(centres, hist / hist.sum(), where="mid", color="black",
             label=f"trained model on {count} training images ({labels} labels)")
    top.set_yscale("log")
    top.set_ylabel("share of labels")
    top.set_title(f"GHM-C gradient density, {os.path.basename(os.path.normpath(run_dir))} "
                  f"({bins} bins)")
    top.legend(fontsize=8)
    bottom.plot(centres, weights, "o-")
    bottom.set_yscale("log")
    bottom.axhline(1.0, color="grey", lw=0.8)
    bottom.set_xlabel("gradient norm g = |sigmoid(x) - y|")
    bottom.set_ylabel("GHM weight of the bin")
    fig.tight_layout()
    name = os.path.basename(os.path.normpath(run_dir))
    output = os.path.join(FOLDER, f"ghm_density_{name}.png")
    fig.savefig(output, dpi=110)
    easy = hist[0] / hist.sum()
    print(f"Wrote {output}; {easy:.1%} of the labels have g < {1 / bins:.3f} (first bin), "
          f"weight there {weights[0]:.3g}; largest weight {np.nanmax(weights):.3g}")


if __name__ == "__main__":
    main()
