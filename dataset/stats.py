"""Label statistics of a label file: counts, labels per image, class co-occurrence.

    python -m dataset.stats data/train.csv -o runs/stats/train

Writes to the output folder (unknown `-1` values are never counted as present, and are left out
of every ratio):

    stats.json                   all numbers below, plus both matrices
    class_frequency.png          positive images per class, most frequent first, with the images
                                 where the class is unknown stacked on top
    labels_per_image.png         histogram of positive labels per image
    cooccurrence_counts.png      images holding both classes i and j
    conditional_probability.png  P(j present | i present), the matrix the graph heads start from
"""

import argparse
import json
import os
import sys

import numpy as np
from matplotlib.figure import Figure  # a bare Figure renders with Agg and leaves pyplot's state alone

from dataset.arguments import class_list, run_tool
from dataset.cooccurrence import conditional_probability, cooccurrence_counts
from dataset.labels import LabelTable, read_labels
from utils.atomic import atomic_path, write_text

MAX_TICK_LABELS = 60  # beyond this many classes, names on the axes overlap into a black band


def label_statistics(table_or_path, out_dir, class_names=None):
    """Computes the statistics, writes the JSON and the plots, returns the numbers.

    Args:
        table_or_path: LabelTable or str. A read table, or a label file to read.
        out_dir: str. Output folder (created if needed).
        class_names: list[str] or None. Passed to `read_labels` when a path is given (required
            for the text format).

    Returns:
        dict. What `stats.json` holds: `images`, `class_names`, per-class `positives`,
        `negatives`, `unknown`, `unknown_share` (unknown / images) and `frequency` (positives / known),
        `unknown_share_overall` (unknown entries / all entries), `labels_per_image`
        (mean and histogram), `cooccurrence_counts` and `conditional_probability` ([C][C]
        lists), and `files` (the written paths).
    """
    table = table_or_path if isinstance(table_or_path, LabelTable) else read_labels(table_or_path, class_names)
    labels, names = table.labels, table.class_names
    if labels.size and not np.isin(labels, (-1, 0, 1)).all():
        raise ValueError(f"{table.source}: label statistics need values 1 / 0 / -1 (not a groups file)")
    counts, positives = cooccurrence_counts(labels)
    conditional = conditional_probability(labels)
    unknown = (labels == -1).sum(axis=0)
    known = len(labels) - unknown
    per_image = (labels == 1).sum(axis=1)
    histogram = np.bincount(per_image, minlength=1)
    files = {name: os.path.join(out_dir, name) for name in (
        "stats.json", "class_frequency.png", "labels_per_image.png", "cooccurrence_counts.png",
        "conditional_probability.png")}
    stats = {
        "source": table.source,
        "images": int(len(labels)),
        "class_names": list(names),
        "positives": _per_class(names, positives),
        "negatives": _per_class(names, (labels == 0).sum(axis=0)),
        "unknown": _per_class(names, unknown),
        # Partial labels: a class known for few images teaches (and is measured on) only those.
        "unknown_share": {n: round(float(u / len(labels)), 6) if len(labels) else 0.0 for n, u in zip(names, unknown)},
        "unknown_share_overall": round(float(unknown.sum() / labels.size), 6) if labels.size else 0.0,
        "frequency": {n: round(float(p / k), 6) if k else 0.0 for n, p, k in zip(names, positives, known)},
        "labels_per_image": {
            "mean": round(float(per_image.mean()), 6) if len(per_image) else 0.0,
            "histogram": {str(k): int(n) for k, n in enumerate(histogram)},
        },
        "cooccurrence_counts": counts.tolist(),
        "conditional_probability": np.round(conditional, 6).tolist(),
        "files": files,
    }
    os.makedirs(out_dir, exist_ok=True)
    _plot_frequency(files["class_frequency.png"], names, positives, unknown)
    _plot_histogram(files["labels_per_image.png"], histogram)
    _plot_matrix(files["cooccurrence_counts.png"], names, counts, "images with both i and j", "count")
    _plot_matrix(files["conditional_probability.png"], names, conditional,
                 "P(j present | i present)", "probability")
    write_text(files["stats.json"], json.dumps(stats, indent=1) + "\n")
    return stats


def unknown_summary(stats, most=3):
    """One line: the share of unknown (-1) entries, overall and for the classes with the most."""
    shares = stats["unknown_share"]
    if not stats["unknown_share_overall"]:
        return "unknown (-1) entries: none"
    top = sorted(shares, key=lambda name: -shares[name])[:most]
    listed = ", ".join(f"{name} {shares[name]:.1%}" for name in top)
    return f"unknown (-1) entries: {stats['unknown_share_overall']:.1%} of all; most unknown: {listed}"


def _per_class(names, values):
    return {name: int(v) for name, v in zip(names, values)}


def _save(fig, path):
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")


def _plot_frequency(path, names, positives, unknown):
    order = np.argsort(-positives, kind="stable")
    fig = Figure(figsize=(max(6.0, 0.18 * len(names) + 2), 4))
    ax = fig.add_subplot()
    ax.bar(np.arange(len(names)), positives[order], label="positive")
    if unknown.any():
        ax.bar(np.arange(len(names)), unknown[order], bottom=positives[order], color="lightgray",
               label="unknown (-1)")
        ax.legend()
    if len(names) <= MAX_TICK_LABELS:
        ax.set_xticks(np.arange(len(names)), [names[i] for i in order], rotation=90, fontsize=8)
    ax.set_ylabel("images with the class")
    ax.set_title("positive images per class")
    _save(fig, path)


def _plot_histogram(path, histogram):
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.bar(np.arange(len(histogram)), histogram)
    ax.set_xlabel("positive labels in the image")
    ax.set_ylabel("images")
    ax.set_title("labels per image")
    _save(fig, path)


def _plot_matrix(path, names, matrix, title, colorbar_label):
    side = max(5.0, 0.15 * len(names) + 3)
    fig = Figure(figsize=(side + 1, side))
    ax = fig.add_subplot()
    # Colour scale from the off-diagonal entries: the diagonal (a class with itself) is the
    # largest value in each row and would wash the pairs out.
    off_diagonal = matrix[~np.eye(len(names), dtype=bool)]
    vmax = off_diagonal.max() if off_diagonal.size and off_diagonal.max() > 0 else None
    image = ax.imshow(matrix, cmap="viridis", interpolation="nearest", vmin=0, vmax=vmax)
    fig.colorbar(image, ax=ax, label=colorbar_label, extend="max" if vmax is not None else "neither")
    if len(names) <= MAX_TICK_LABELS:
        ax.set_xticks(np.arange(len(names)), names, rotation=90, fontsize=7)
        ax.set_yticks(np.arange(len(names)), names, fontsize=7)
    ax.set_xlabel("class j")
    ax.set_ylabel("class i")
    ax.set_title(title)
    _save(fig, path)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dataset.stats", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("label_file", help="canonical .csv or text label file")
    parser.add_argument("-o", "--output-dir", required=True, help="folder for stats.json and the plots")
    parser.add_argument("--classes", type=class_list, default=None,
                        help="class names a,b,c or @file (required for the text format)")
    args = parser.parse_args(argv)
    stats, status = run_tool(label_statistics, args.label_file, args.output_dir, args.classes)
    if status:
        return status
    histogram = ", ".join(f"{k}: {n}" for k, n in stats["labels_per_image"]["histogram"].items() if n)
    print(f"{stats['images']} images, {len(stats['class_names'])} classes, "
          f"labels per image: mean {stats['labels_per_image']['mean']:.3f} ({histogram})")
    print(unknown_summary(stats))
    print(f"wrote {', '.join(stats['files'].values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
