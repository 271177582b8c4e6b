"""Figures of the test report, drawn with matplotlib's object API (no pyplot state) and saved atomically.

Every function takes plain arrays and a PNG path, so each figure can be redrawn from metrics.json
and predictions.csv without a model.
"""

import math

import numpy as np
from matplotlib.figure import Figure

from multi_label.evaluation.class_rankings import class_rankings
from utils.atomic import atomic_path

DPI = 100
COLOURS = {"fixed": "#8c8c8c", "fitted": "#1f77b4", "top": "#ff7f0e"}  # by the start of a threshold choice's label


def plain(text):
    """Text for a matplotlib label: `$` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


def save(figure, path):
    """Writes a figure as PNG atomically (a kill leaves the old file or the new one)."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")


def ap_bar_chart(path, class_names, ap, mean_ap):
    """Horizontal bars of AP per class, best first, with the mAP as a line.

    Args:
        path: str. PNG file.
        class_names: list[str]. Classes to draw.
        ap: list[float or None]. AP per class; None (no positive) is drawn as "n/a".
        mean_ap: float. mAP over all classes.
    """
    order = sorted(range(len(class_names)), key=lambda i: -1.0 if ap[i] is None else -ap[i])
    figure = Figure(figsize=(7, max(2.5, 0.28 * len(order) + 1.2)), layout="constrained")
    axes = figure.add_subplot()
    values = [0.0 if ap[i] is None else ap[i] for i in order]
    axes.barh(range(len(order)), values, color=COLOURS["fitted"])
    for row, i in enumerate(order):
        label = "n/a" if ap[i] is None else f"{ap[i]:.3f}"
        axes.text(values[row] + 0.01, row, label, va="center", fontsize=8)
    axes.axvline(mean_ap, color="black", linestyle="--", linewidth=1, label=f"mAP {mean_ap:.3f}")
    axes.set_yticks(range(len(order)), [plain(class_names[i]) for i in order], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 1.1)
    axes.set_xlabel("average precision")
    axes.set_title("Average precision per class")
    axes.legend(loc="lower right", fontsize=8)
    save(figure, path)


def pr_curve_grid(path, class_names, targets, scores, operating_points):
    """Precision-recall curve of each class in a grid, with the thresholds' operating points.

    Args:
        path: str. PNG file.
        class_names: list[str]. One per column of targets.
        targets: np.ndarray. [N, C] in {1, 0, -1}; -1 entries are left out.
        scores: np.ndarray. Probabilities [N, C].
        operating_points: dict[str, np.ndarray]. Legend label -> bool [N, C] predicted labels at
            a threshold choice, drawn as dots at their precision and recall.
    """
    count = len(class_names)
    columns = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / columns))
    figure = Figure(figsize=(2.6 * columns, 2.4 * rows + 0.8), layout="constrained")
    styles = list(zip(operating_points.items(), ("o", "s", "^"), (COLOURS["fixed"], COLOURS["fitted"], "red")))
    for c, ranks in enumerate(class_rankings(targets, scores)):
        axes = figure.add_subplot(rows, columns, c + 1)
        positives = len(ranks.score)
        if positives:
            recall = ranks.tp / positives
            precision = ranks.tp / (ranks.tp + ranks.fp)
            # each recall step is taken at the precision of its threshold: the curve AP sums
            axes.step(np.r_[0.0, recall], np.r_[precision[0], precision], where="pre", color="black", linewidth=1)
            ap = float(precision.sum() / positives)
            title = f"{plain(class_names[c])}  AP {ap:.2f}"
        else:
            title = f"{plain(class_names[c])}  (no positive)"
        for (label, predicted), marker, colour in styles:
            point = _precision_recall(targets[:, c], predicted[:, c])
            if point is not None:
                axes.plot(point[1], point[0], marker, color=colour, markersize=6, label=label)
        axes.set_xlim(-0.02, 1.02)
        axes.set_ylim(-0.02, 1.05)
        axes.set_title(title, fontsize=9)
        axes.tick_params(labelsize=7)
        if c % columns == 0:
            axes.set_ylabel("precision", fontsize=8)
        if c >= count - columns:
            axes.set_xlabel("recall", fontsize=8)
    handles, labels = next((h for h in (a.get_legend_handles_labels() for a in figure.axes) if h[0]), ([], []))
    if handles:
        figure.legend(handles, labels, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False)
    figure.suptitle("Precision-recall per class; dots: the thresholds' operating points")
    save(figure, path)


def _precision_recall(targets, predicted):
    valid = targets != -1
    predicted = predicted[valid]
    present = targets[valid] == 1
    if not present.any():
        return None
    correct = np.count_nonzero(predicted & present)
    return (correct / max(np.count_nonzero(predicted), 1), correct / np.count_nonzero(present))


def confusion_grid(path, class_names, counts):
    """A 2x2 confusion matrix per class (rows: actual, columns: predicted), counts written in.

    Cells are coloured by the share of their actual row, so rare classes read as clearly as
    common ones.

    Args:
        path: str. PNG file.
        class_names: list[str]. Classes to draw.
        counts: np.ndarray. Int [C, 4]: TP, FP, FN, TN per class.
    """
    count = len(class_names)
    columns = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / columns))
    figure = Figure(figsize=(2.2 * columns, 2.2 * rows + 0.4), layout="constrained")
    for c, (tp, fp, fn, tn) in enumerate(np.asarray(counts)):
        matrix = np.array([[tn, fp], [fn, tp]], np.float64)
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        axes = figure.add_subplot(rows, columns, c + 1)
        axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for (i, j), value in np.ndenumerate(matrix):
            name = (("TN", "FP"), ("FN", "TP"))[i][j]
            axes.text(j, i, f"{name}\n{int(value)}", ha="center", va="center", fontsize=8,
                      color="white" if shares[i, j] > 0.6 else "black")
        axes.set_xticks([0, 1], ["pred 0", "pred 1"], fontsize=7)
        axes.set_yticks([0, 1], ["true 0", "true 1"], fontsize=7)
        axes.set_title(plain(class_names[c]), fontsize=9)
    figure.suptitle("Confusion counts per class at the thresholds in use")
    save(figure, path)


def group_confusion_matrices(path, groups):
    """One confusion matrix per attribute group of a `groups` head, cells coloured by row share.

    Args:
        path: str. PNG file.
        groups: dict. {group: {"accuracy": float or None, "known": int, "confusion_matrix": [[int]]}}
            (rows: true class, columns: predicted class), as `group_metrics.evaluate_groups` gives.
    """
    count = len(groups)
    columns = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / columns))
    figure = Figure(figsize=(4.2 * columns, 4.0 * rows), layout="constrained")
    for g, (name, group) in enumerate(groups.items()):
        matrix = np.asarray(group["confusion_matrix"], np.float64)
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        axes = figure.add_subplot(rows, columns, g + 1)
        axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        if len(matrix) <= 12:  # counts stay readable up to about a dozen classes
            for (i, j), value in np.ndenumerate(matrix):
                axes.text(j, i, str(int(value)), ha="center", va="center", fontsize=6,
                          color="white" if shares[i, j] > 0.6 else "black")
        if len(matrix) <= 30:
            axes.set_xticks(range(len(matrix)), range(len(matrix)), fontsize=7)
            axes.set_yticks(range(len(matrix)), range(len(matrix)), fontsize=7)
        accuracy = "n/a" if group["accuracy"] is None else f"{group['accuracy']:.3f}"
        axes.set_title(f"{plain(name)}: accuracy {accuracy} ({group['known']} known)", fontsize=9)
        axes.set_xlabel("predicted class", fontsize=8)
        axes.set_ylabel("true class", fontsize=8)
    figure.suptitle("Confusion matrix per group (rows: true class; unknown labels left out)")
    save(figure, path)


def example_grid(path, examples, title):
    """Thumbnails of images, each titled with its class and probability.

    Args:
        path: str. PNG file.
        examples: list[tuple]. (image file, name to show, class name, probability); a file that
            cannot be opened is drawn as an empty panel saying so.
        title: str. Figure title.
    """
    from PIL import Image

    count = max(1, len(examples))
    columns = min(4, count)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(2.4 * columns, 2.6 * rows + 0.5), layout="constrained")
    for k, (image_path, name, class_name, probability) in enumerate(examples):
        axes = figure.add_subplot(rows, columns, k + 1)
        try:
            with Image.open(image_path) as image:
                image = image.convert("RGB")
                image.thumbnail((160, 160))
                axes.imshow(np.asarray(image))
        except (OSError, ValueError):
            axes.text(0.5, 0.5, "cannot open", ha="center", va="center")
        axes.set_title(f"{plain(class_name)}  p={probability:.3f}", fontsize=9)
        axes.set_xlabel(plain(_shorten(name)), fontsize=7)
        axes.set_xticks([])
        axes.set_yticks([])
    if not examples:
        axes = figure.add_subplot()
        axes.text(0.5, 0.5, "none", ha="center", va="center")
        axes.set_axis_off()
    figure.suptitle(plain(title))
    save(figure, path)


def _shorten(name, width=28):
    return name if len(name) <= width else "..." + name[-(width - 3):]


METRICS_COMPARED = ["CP", "CR", "CF1", "CF1_macro", "OP", "OR", "OF1", "example_f1", "subset_accuracy"]


def threshold_comparison(path, summaries, class_names, fitted, fixed):
    """Metrics at each threshold choice side by side, and the fitted threshold of each class.

    Args:
        path: str. PNG file.
        summaries: dict[str, dict]. Legend label -> metrics at that choice (keys METRICS_COMPARED).
        class_names: list[str]. Classes of `fitted`.
        fitted: np.ndarray or None. Fitted thresholds [C]; None draws the first panel only.
        fixed: float. The fixed threshold, drawn as a line over the fitted ones.
    """
    panels = 1 if fitted is None else 2
    height = 4 if fitted is None else max(4.0, 0.25 * len(class_names) + 1.2)
    figure = Figure(figsize=(6.5 * panels, height), layout="constrained")
    axes = figure.add_subplot(1, panels, 1)
    width = 0.8 / max(len(summaries), 1)
    for k, (label, summary) in enumerate(summaries.items()):
        values = [summary[m] for m in METRICS_COMPARED]
        colour = next((c for key, c in COLOURS.items() if label.startswith(key)), COLOURS["top"])
        axes.bar(np.arange(len(values)) + (k - (len(summaries) - 1) / 2) * width, values, width,
                 label=plain(label), color=colour)
    axes.set_xticks(range(len(METRICS_COMPARED)), METRICS_COMPARED, rotation=45, ha="right", fontsize=8)
    axes.set_ylim(0, 1.05)
    axes.set_title("Test metrics by threshold choice")
    axes.legend(fontsize=8)
    if fitted is not None:
        axes = figure.add_subplot(1, 2, 2)
        axes.barh(range(len(class_names)), fitted, color=COLOURS["fitted"])
        axes.axvline(fixed, color="black", linestyle="--", linewidth=1, label=f"fixed {fixed:g}")
        axes.set_yticks(range(len(class_names)), [plain(n) for n in class_names], fontsize=8)
        axes.invert_yaxis()
        axes.set_xlim(0, 1)
        axes.set_xlabel("probability threshold")
        axes.set_title("Per-class thresholds fitted on validation")
        axes.legend(fontsize=8)
    save(figure, path)
