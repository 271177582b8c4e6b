"""Test mode: evaluates a checkpoint on `test_labels`; writes metrics.json, predictions.csv and the report.

On screen: mAP, CF1 and OF1 and the weakest classes by AP (every class is in metrics.json and the
report), then the paths written.

Labels are predicted with the per-class thresholds fitted on validation after training
(`class_thresholds="fitted"`) or with the fixed `threshold`; both are always measured, side by side.
"""

import csv
import dataclasses
import io
import json
import os
import shlex

import numpy as np

from dataset.run_splits import load_split
from multi_label.calibration import load_calibration
from multi_label.evaluation.group_metrics import evaluate_groups, format_confusion_matrix, predict_groups
from multi_label.evaluation.inference import predict_dataset, softmax
from multi_label.evaluation.metrics import binarize, evaluate_all
from multi_label.tasks.inputs import input_dataset
from multi_label.tasks.settings import split_settings
from multi_label.trained_run import load_checkpoint, resolve_checkpoint, saved_class_names
from utils.atomic import write_text
from utils.config import ConfigError
from utils.run_folder import run_folders

WEAKEST_SHOWN = 5  # classes of lowest AP listed on screen; metrics.json and the report list every class


def run_test(config):
    """Evaluates on the test split; writes metrics.json, predictions.csv and the report."""
    table = load_split(split_settings(config), "test_labels")
    if table is None:
        raise ConfigError("test_labels is empty; mode=test needs a label file")
    if config.groups:  # one softmax per attribute group: accuracy and confusion matrices, not mAP
        run_group_test(config, table)
        return
    path = resolve_checkpoint(config.checkpoint, config.run_name)
    trained = saved_class_names(path)
    if trained is not None and trained != table.class_names:
        raise ConfigError(f"test_labels={config.test_labels!r} has classes {table.class_names}, but the checkpoint "
                          f"was trained on {trained}")
    model = load_checkpoint(path, len(table.class_names))
    calibration = load_calibration(path, table.class_names, class_thresholds=config.class_thresholds,
                                   threshold=config.threshold,
                                   temperature_scaling=config.temperature_scaling)
    # image files or TFRecords, read once: a cache would only hold memory
    dataset, report = input_dataset(dataclasses.replace(config, cache_images=False), table, training=False)
    logits, labels, paths = predict_dataset(model, dataset)
    metrics = metrics_at_thresholds(labels, logits, table.class_names, calibration, config.threshold)
    skipped = report.skipped()
    metrics.update(checkpoint=path, test_labels=config.test_labels, images=len(paths), skipped_images=skipped)

    out_dir, log_dir = run_folders(config.run_name)
    metrics_path = os.path.join(out_dir, "metrics.json")
    predictions_path = os.path.join(out_dir, "predictions.csv")
    write_text(metrics_path, json.dumps(metrics, indent=2) + "\n")
    names = dict(zip(table.images, table.names))
    write_text(predictions_path, _predictions_csv([names.get(p, p) for p in paths], table.class_names,
                                                  calibration.probabilities(logits)))
    _print_summary(metrics, skipped)
    _print_thresholds(metrics, config.threshold, calibration.info)
    print(f"Wrote {metrics_path}\nWrote {predictions_path}")
    if config.report and len(paths):
        report_path = _write_report(config, metrics, table.class_names, labels, logits, paths, names, calibration,
                                    out_dir, log_dir)
        print(f"Wrote {report_path} and its figures; TensorBoard: tensorboard --logdir {os.path.join(log_dir, 'test')}")


def metrics_at_thresholds(labels, logits, class_names, calibration, threshold):
    """Every metric at the thresholds in use, and CF1 and the rest at the fixed and the fitted thresholds.

    Args:
        labels: np.ndarray. [N, C] test labels.
        logits: np.ndarray. [N, C] the model's logits.
        class_names: list[str]. One per class.
        calibration: Calibration. The thresholds and temperature applied.
        threshold: float. The fixed threshold.
    """
    metrics = evaluate_all(labels, calibration.scores(logits), class_names, threshold=calibration.thresholds, top_k=3)
    metrics["thresholds_in_use"] = calibration.kind
    metrics["temperature"] = calibration.temperature
    metrics["fitted_thresholds"] = (None if calibration.fitted is None
                                    else dict(zip(class_names, calibration.fitted.tolist())))
    metrics["at_fixed_threshold"] = _at(labels, calibration.scores(logits, "fixed"), class_names, threshold)
    metrics["at_fitted_thresholds"] = (None if calibration.fitted is None else
                                       _at(labels, calibration.scores(logits, "fitted"), class_names,
                                           calibration.fitted))
    return metrics


def run_group_test(config, table):
    """Test mode of a `groups` head: per-group accuracy (known labels only) and confusion matrices.

    Writes metrics.json ({"accuracy": mean over groups, "groups": {group: {"accuracy", "known",
    "confusion_matrix"}}, ...}), predictions.csv (per image, the predicted class of each group
    and its probability) and confusion_matrices.png.
    """
    path = resolve_checkpoint(config.checkpoint, config.run_name)
    model = load_checkpoint(path, groups=config.groups, head=config.head)  # a sigmoid checkpoint stops here
    # image files or TFRecords, read once: a cache would only hold memory
    dataset, report = input_dataset(dataclasses.replace(config, cache_images=False), table, training=False)
    logits, labels, paths = predict_groups(model, dataset, table.class_names)
    metrics = evaluate_groups(labels, logits, config.groups)
    metrics.update(checkpoint=path, test_labels=config.test_labels, images=len(paths), skipped_images=report.skipped())
    out_dir = run_folders(config.run_name)[0]
    metrics_path = os.path.join(out_dir, "metrics.json")
    predictions_path = os.path.join(out_dir, "predictions.csv")
    write_text(metrics_path, json.dumps(metrics, indent=2) + "\n")
    names = dict(zip(table.images, table.names))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["image", *(f"{g}{suffix}" for g in config.groups for suffix in ("", "_probability"))])
    probabilities = {g: softmax(v) for g, v in logits.items()}
    for i, image in enumerate(paths):
        cells = [(int(np.argmax(probabilities[g][i])), f"{np.max(probabilities[g][i]):.6f}") for g in config.groups]
        writer.writerow([names.get(image, image), *(c for pair in cells for c in pair)])
    write_text(predictions_path, out.getvalue())
    mean = "n/a (no known labels)" if metrics["accuracy"] is None else f"{metrics['accuracy']:.4f}"
    print(f"\nTest accuracy (mean over groups): {mean} over {len(paths)} images")
    for name, group in metrics["groups"].items():
        accuracy = "no known label" if group["accuracy"] is None else f"{group['accuracy']:.4f}"
        print(f"\n{name}: accuracy {accuracy} over {group['known']} known labels; confusion matrix:")
        print(format_confusion_matrix(group["confusion_matrix"]))
    for skipped in metrics["skipped_images"]:
        print(f"warning: skipped test image that failed to decode: {skipped}")
    from multi_label.evaluation.plots import group_confusion_matrices

    figure_path = os.path.join(out_dir, "confusion_matrices.png")
    group_confusion_matrices(figure_path, metrics["groups"])
    print(f"Wrote {metrics_path}\nWrote {predictions_path}\nWrote {figure_path}")


def _at(labels, probabilities, class_names, threshold):
    return evaluate_all(labels, probabilities, class_names, threshold=threshold, top_k=None)["at_threshold"]


def _write_report(config, metrics, class_names, labels, logits, paths, names, calibration, out_dir, log_dir):
    from multi_label.evaluation.report import FIGURES, write_report, write_test_summaries

    folder = os.path.join(out_dir, "report")
    images = [(p, names.get(p, p)) for p in paths]
    probabilities = calibration.probabilities(logits)
    points = {f"fixed {config.threshold:g}": binarize(calibration.scores(logits, "fixed"), config.threshold)}
    if calibration.fitted is not None:
        points["fitted per class"] = binarize(calibration.scores(logits, "fitted"), calibration.fitted)
    report_path = write_report(folder, metrics, labels, probabilities, images, class_names,
                               calibration.predict(logits), points, calibration.fitted, config.threshold,
                               examples=config.report_examples, max_classes=config.report_max_classes,
                               command=reproduce_command(config))
    figures = [os.path.join(folder, FIGURES[key]) for key in ("pr", "ap", "thresholds", "confusion")]
    write_test_summaries(os.path.join(log_dir, "test"), metrics, class_names, labels, probabilities, figures)
    return report_path


def reproduce_command(config):
    """`python run.py mode=test ...` with every setting that differs from its default."""
    from configs import Config

    defaults = Config()
    parts = ["python", "run.py", "mode=test"]
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name == "mode" or value == getattr(defaults, field.name):
            continue
        text = value if isinstance(value, str) and value and shlex.quote(value) == value else repr(value)
        parts.append(shlex.quote(f"{field.name}={text}"))
    return " ".join(parts)


def _predictions_csv(names, class_names, probabilities):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["image", *class_names])
    for name, row in zip(names, probabilities):
        writer.writerow([name, *(f"{p:.6f}" for p in row)])
    return out.getvalue()


def _print_summary(metrics, skipped):
    """The test's figures on screen: mAP, CF1 and OF1 at the thresholds in use, and the weakest classes by AP."""
    at = metrics["at_threshold"]
    kind = "per-class fitted" if metrics["thresholds_in_use"] == "fitted" else "fixed"
    rated = sorted(((name, ap) for name, ap in metrics["AP"].items() if ap is not None), key=lambda item: item[1])
    weakest = rated[:WEAKEST_SHOWN]
    width = max([len(name) + 4 for name, _ in weakest] + [16])
    print(f"\nTest mAP: {_figure(metrics['mAP'])} over {metrics['images']} images (CF1 and OF1 at the {kind} "
          "thresholds)")
    for name in ("mAP", "CF1", "OF1"):
        print(f"  {name:<{width + 2}}{_figure(metrics['mAP'] if name == 'mAP' else at[name])}")
    if weakest:
        print(f"  weakest {len(weakest)} of {len(rated)} classes by AP (every class: metrics.json and the report):")
        for name, ap in weakest:
            print(f"    {name:<{width}}{ap:.4f}")
    if metrics["undefined_classes"]:
        print(f"  no positive test example (left out of the mAP): {', '.join(metrics['undefined_classes'])}")
    for path in skipped:
        print(f"warning: skipped test image that failed to decode: {path}")


def _figure(value):
    return "n/a" if value is None else f"{value:.4f}"


def _print_thresholds(metrics, threshold, info):
    fixed = metrics["at_fixed_threshold"]["CF1"]
    in_use = metrics["thresholds_in_use"]
    print(f"Test CF1 at the fixed threshold {threshold:g}: {fixed:.4f}" + (" (in use)" if in_use == "fixed" else ""))
    if metrics["at_fitted_thresholds"] is None:
        print("Test CF1 at per-class thresholds fitted on validation: not available (no thresholds fitted for "
              "this checkpoint)")
        return
    fitted = metrics["at_fitted_thresholds"]["CF1"]
    line = (f"Test CF1 at per-class thresholds fitted on validation: {fitted:.4f} ({fitted - fixed:+.4f})"
            + (" (in use)" if in_use == "fitted" else ""))
    if fitted <= fixed and info.get("val_images"):
        line += (f"; not higher: they were fitted on {info['val_images']} validation images with as few as "
                 f"{info.get('val_positives_min', '?')} positives in a class, and thresholds fitted on few "
                 "examples follow their noise")
    print(line)
