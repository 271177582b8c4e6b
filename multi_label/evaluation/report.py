"""The test report: `report.md` and its figures in one folder, and the same curves in TensorBoard.

The Markdown file links the PNGs by relative name, so the folder can be moved or attached as is.
"""

import contextlib
import glob
import os
import shutil
import tempfile

import numpy as np

from multi_label.evaluation import plots
from multi_label.evaluation.class_rankings import UNKNOWN
from utils.atomic import write_text

FIGURES = {
    "thresholds": "thresholds.png",
    "ap": "ap_per_class.png",
    "pr": "pr_curves.png",
    "confusion": "confusion.png",
    "false_positives": "false_positives.png",
    "false_negatives": "false_negatives.png",
}
SUMMARY_ROWS = ["CP", "CR", "CF1", "CF1_macro", "OP", "OR", "OF1", "hamming_loss", "subset_accuracy", "example_f1"]


def confusion_counts(targets, predicted):
    """Per-class TP, FP, FN, TN over valid entries (-1 entries are not counted).

    Args:
        targets: np.ndarray. [N, C] in {1, 0, -1}.
        predicted: np.ndarray. Bool [N, C].

    Returns:
        np.ndarray. Int [C, 4]: TP, FP, FN, TN.
    """
    targets = np.asarray(targets)
    predicted = np.asarray(predicted, bool)
    present, absent = targets == 1, targets == 0
    return np.stack([np.count_nonzero(predicted & present, axis=0), np.count_nonzero(predicted & absent, axis=0),
                     np.count_nonzero(~predicted & present, axis=0), np.count_nonzero(~predicted & absent, axis=0)],
                    axis=1)


def confident_errors(targets, probabilities, predicted, kind, limit):
    """The most confident errors among the predicted labels.

    Args:
        targets: np.ndarray. [N, C] in {1, 0, -1}.
        probabilities: np.ndarray. [N, C].
        predicted: np.ndarray. Bool [N, C], the labels predicted.
        kind: str. "fp": absent but predicted, highest probability first; "fn": present but not
            predicted, lowest probability first.
        limit: int. Most errors returned.

    Returns:
        list[tuple[int, int, float]]. (image index, class index, probability).
    """
    wrong = (targets == 0) & predicted if kind == "fp" else (targets == 1) & ~predicted
    rows, cols = np.nonzero(wrong)
    values = probabilities[rows, cols]
    order = np.argsort(-values if kind == "fp" else values, kind="stable")[:limit]
    return [(int(rows[k]), int(cols[k]), float(values[k])) for k in order]


def frequent_classes(targets, limit):
    """Indices of the `limit` classes with the most positives, in class order."""
    positives = np.count_nonzero(np.asarray(targets) == 1, axis=0)
    chosen = np.argsort(-positives, kind="stable")[:limit]
    return sorted(chosen.tolist())


def rarest_classes_map(ap_by_class, class_names, train_labels, count=5):
    """The mean test AP of the `count` classes with the fewest positives in the training labels.

    The long-tail figure: the test split's own counts say nothing of the tail when it is balanced.
    Classes without a test AP (no test positive) are passed over.

    Args:
        ap_by_class: dict[str, float or None]. The test AP per class name (metrics.json's "AP").
        class_names: list[str]. One per column of `train_labels`.
        train_labels: np.ndarray. [N, C] training labels in {1, 0, -1}.
        count: int. Classes averaged.

    Returns:
        (list[tuple[str, int]], float or None). (class, training positives) of the classes used, rarest
        first, and their mean AP (None when none has an AP).
    """
    positives = np.count_nonzero(np.asarray(train_labels) == 1, axis=0)
    order = np.argsort(positives, kind="stable")
    rare = [(class_names[c], int(positives[c])) for c in order if ap_by_class.get(class_names[c]) is not None]
    rare = rare[:count]
    return rare, (float(np.mean([ap_by_class[name] for name, _ in rare])) if rare else None)


def markdown_cell(text):
    """Text safe inside a Markdown table cell or list item: no table breaks, markup or raw HTML."""
    text = " ".join(str(text).split())
    for char in "\\`*_[]|#":
        text = text.replace(char, "\\" + char)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_report(folder, metrics, targets, probabilities, images, class_names, predicted, operating_points, fitted,
                 fixed_threshold, examples=16, max_classes=64, command=""):
    """Writes `report.md` and the figures of FIGURES into `folder`; returns the report's path.

    Args:
        folder: str. Output folder (created).
        metrics: dict. The test metrics (metrics.json), with `at_fixed_threshold`,
            `at_fitted_thresholds` and `threshold` (the thresholds in use).
        targets: np.ndarray. [N, C] test labels in {1, 0, -1}.
        probabilities: np.ndarray. [N, C] test probabilities.
        images: list[tuple[str, str]]. (file, name as in the label file) per row.
        class_names: list[str]. One per column.
        predicted: np.ndarray. Bool [N, C], the labels predicted at the thresholds in use.
        operating_points: dict[str, np.ndarray]. Threshold choice -> bool [N, C] predicted labels,
            compared in the precision-recall figure.
        fitted: np.ndarray or None. Fitted per-class thresholds, drawn beside the fixed one.
        fixed_threshold: float. The fixed threshold.
        examples: int. Images per false-positive / false-negative grid; 0 draws no grid.
        max_classes: int. Classes drawn in the per-class grids.
        command: str. The command that reproduces the report.
    """
    os.makedirs(folder, exist_ok=True)
    figure = {key: os.path.join(folder, name) for key, name in FIGURES.items()}
    drawn = frequent_classes(targets, max_classes)
    names_drawn = [class_names[c] for c in drawn]

    summaries = {f"fixed {fixed_threshold:g}": metrics["at_fixed_threshold"]}
    if fitted is not None:
        summaries["fitted per class"] = metrics["at_fitted_thresholds"]
    summaries[f"top-{metrics['top_k']}"] = metrics["at_top_k"]
    plots.threshold_comparison(figure["thresholds"], summaries, class_names, fitted, fixed_threshold)
    plots.ap_bar_chart(figure["ap"], names_drawn, [metrics["AP"][n] for n in names_drawn], metrics["mAP"])
    plots.pr_curve_grid(figure["pr"], names_drawn, targets[:, drawn], probabilities[:, drawn],
                        {label: p[:, drawn] for label, p in operating_points.items()})
    counts = confusion_counts(targets, predicted)
    plots.confusion_grid(figure["confusion"], names_drawn, counts[drawn])
    errors = {}
    for kind, title in (("fp", "Most confident false positives"), ("fn", "Most confident false negatives")):
        errors[kind] = confident_errors(targets, probabilities, predicted, kind, examples)
        key = "false_positives" if kind == "fp" else "false_negatives"
        if examples > 0:
            shown = [(images[i][0], images[i][1], class_names[c], p) for i, c, p in errors[kind]]
            plots.example_grid(figure[key], shown, title)
    text = _markdown(metrics, class_names, counts, fitted, fixed_threshold, images, errors, examples,
                     len(drawn) < len(class_names), command)
    path = os.path.join(folder, "report.md")
    write_text(path, text)
    return path


def _markdown(metrics, class_names, counts, fitted, fixed_threshold, images, errors, examples, partial, command):
    in_use = metrics["thresholds_in_use"]
    fixed_label = f"fixed {fixed_threshold:g}"
    lines = [
        "# Test report",
        "",
        f"- checkpoint: {markdown_cell(metrics['checkpoint'])}",
        f"- test labels: {markdown_cell(metrics.get('test_labels', ''))}, {metrics['images']} images"
        + (f" ({len(metrics['skipped_images'])} skipped: failed to decode)" if metrics["skipped_images"] else ""),
        f"- thresholds in use: {'per-class, fitted on validation' if in_use == 'fitted' else fixed_label}",
        f"- temperature scaling: {_temperature(metrics.get('temperature'))}",
        "",
        "## Summary",
        "",
        "| metric | value |",
        "|---|---|",
        f"| mAP | {_number(metrics['mAP'])} |",
        f"| mAUC | {_number(metrics['mAUC'])} |",
        "",
    ]
    columns = [(fixed_label + (" (in use)" if in_use == "fixed" else ""), metrics["at_fixed_threshold"])]
    if fitted is not None:
        label = "fitted per class" + (" (in use)" if in_use == "fitted" else "")
        columns.append((label, metrics["at_fitted_thresholds"]))
    columns.append((f"top-{metrics['top_k']}", metrics["at_top_k"]))
    lines += ["| metric | " + " | ".join(label for label, _ in columns) + " |",
              "|---|" + "---|" * len(columns)]
    for row in SUMMARY_ROWS:
        lines.append(f"| {row} | " + " | ".join(_number(summary[row]) for _, summary in columns) + " |")
    lines += ["", "Hamming loss: lower is better; every other metric: higher is better.", ""]
    lines += _threshold_section(metrics, fitted, fixed_threshold)
    lines += [
        "## Average precision per class", "", f"![AP per class]({FIGURES['ap']})", "",
        "## Precision-recall curves", "",
        "Dots mark the precision and recall at each threshold choice." + (
            " Per-class figures show the most frequent classes only (report_max_classes); the table lists all."
            if partial else ""),
        "", f"![precision-recall curves]({FIGURES['pr']})", "",
        "## Confusion counts per class", "",
        "At the thresholds in use; -1 (unknown) labels are not counted.", "",
        f"![confusion counts]({FIGURES['confusion']})", "",
    ]
    lines += _class_table(metrics, class_names, counts, fitted)
    for kind, key, title in (("fp", "false_positives", "Most confident false positives"),
                             ("fn", "false_negatives", "Most confident false negatives")):
        lines += [f"## {title}", ""]
        if examples <= 0:
            lines += ["Not drawn (report_examples=0).", ""]
            continue
        if not errors[kind]:
            lines += ["None at the thresholds in use.", ""]
        lines += [f"![{title.lower()}]({FIGURES[key]})", ""]
        lines += [f"{k + 1}. {markdown_cell(images[i][1])}: {markdown_cell(class_names[c])}, p = {p:.4f}"
                  for k, (i, c, p) in enumerate(errors[kind])]
        lines.append("")
    if command:
        lines += ["## Reproduce", "", "```", command, "```", ""]
    return "\n".join(lines)


def _threshold_section(metrics, fitted, fixed_threshold):
    lines = ["## Thresholds: fitted per class vs fixed", ""]
    fixed_cf1 = metrics["at_fixed_threshold"]["CF1"]
    if fitted is None:
        lines.append(f"No fitted thresholds for this checkpoint: all metrics use the fixed {fixed_threshold:g}.")
    else:
        fitted_cf1 = metrics["at_fitted_thresholds"]["CF1"]
        verdict = "raise" if fitted_cf1 > fixed_cf1 else "do not raise"
        lines.append(f"Per-class thresholds fitted on validation {verdict} the test CF1: {fixed_cf1:.4f} at "
                     f"{fixed_threshold:g} -> {fitted_cf1:.4f} ({fitted_cf1 - fixed_cf1:+.4f}).")
    lines += ["", f"![thresholds]({FIGURES['thresholds']})", ""]
    return lines


def _class_table(metrics, class_names, counts, fitted):
    header = "| class | positives | AP | AUC | threshold | TP | FP | FN | TN | F1 |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    thresholds = np.broadcast_to(np.asarray(metrics["threshold"], np.float64), (len(class_names),))
    for c, name in enumerate(class_names):
        tp, fp, fn, tn = (int(v) for v in counts[c])
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
        lines.append(f"| {markdown_cell(name)} | {tp + fn} | {_number(metrics['AP'][name])} | "
                     f"{_number(metrics['AUC'][name])} | {thresholds[c]:.4f} | {tp} | {fp} | {fn} | {tn} | "
                     f"{_number(f1)} |")
    lines.append("")
    return lines


def _temperature(value):
    return "off" if value is None else f"T = {value:.4f}"


def _number(value):
    return "n/a" if value is None else f"{value:.4f}"


@contextlib.contextmanager
def replacing_event_file(log_dir):
    """Yields a TensorBoard writer whose event file replaces those in `log_dir` once complete.

    The file is written in a temporary folder beside `log_dir` and renamed in at the end, so a
    kill never leaves half an event file; earlier event files in `log_dir` are removed after,
    so TensorBoard shows the latest run of the mode only.
    """
    import tensorflow as tf

    os.makedirs(log_dir, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=".tmp-events-", dir=os.path.dirname(os.path.abspath(log_dir)))
    try:
        writer = tf.summary.create_file_writer(scratch)
        yield writer
        writer.close()
        old = glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))
        for path in glob.glob(os.path.join(scratch, "events.out.tfevents.*")):
            os.replace(path, os.path.join(log_dir, os.path.basename(path)))
        for path in old:
            os.remove(path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_test_summaries(log_dir, metrics, class_names, targets, probabilities, figures):
    """Writes the test metrics, per-class PR curves and report figures to TensorBoard.

    Args:
        log_dir: str. logs/<run>/test; its event file is replaced (see `replacing_event_file`).
        metrics: dict. The test metrics.
        class_names: list[str]. One per column.
        targets: np.ndarray. [N, C] in {1, 0, -1}.
        probabilities: np.ndarray. [N, C], in [0, 1].
        figures: list[str]. PNG files to show under "report/".
    """
    import tensorflow as tf
    from tensorboard.plugins.pr_curve import summary as pr_summary

    with replacing_event_file(log_dir) as writer, writer.as_default():
        scalars = {"mAP": metrics["mAP"], "mAUC": metrics["mAUC"]}
        for label, key in (("fixed", "at_fixed_threshold"), ("fitted", "at_fitted_thresholds"), ("top_k", "at_top_k")):
            for name in ("CF1", "OF1", "CP", "CR"):
                if metrics.get(key):
                    scalars[f"{name}_{label}"] = metrics[key][name]
        for name, value in scalars.items():
            if value is not None:
                tf.summary.scalar(f"test/{name}", value, step=0)
        for c, name in enumerate(class_names):
            if metrics["AP"][name] is not None:
                tf.summary.scalar(f"AP/{name}", metrics["AP"][name], step=0)
            valid = targets[:, c] != UNKNOWN
            if valid.any():
                pb = pr_summary.pb(name, labels=targets[valid, c] == 1,
                                   predictions=probabilities[valid, c].astype(np.float32), num_thresholds=101)
                tf.summary.experimental.write_raw_pb(pb.SerializeToString(), step=0)
        for path in figures:
            if os.path.isfile(path):
                png = tf.io.decode_png(tf.io.read_file(path), channels=3)
                tf.summary.image(f"report/{os.path.splitext(os.path.basename(path))[0]}", png[None], step=0)
