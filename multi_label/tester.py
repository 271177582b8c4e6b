"""Test mode: evaluates a checkpoint on `test_labels` and writes metrics.json and predictions.csv."""

import csv
import io
import json
import os

import keras

import multi_label.preprocessing  # noqa: F401  registers the custom layers for safe loading
from dataset.pipeline import DecodeReport, make_dataset
from multi_label.data import load_split
from multi_label.evaluation import predict_dataset, sigmoid
from utils.atomic import write_text
from utils.config import ConfigError
from utils.metrics import evaluate_all
from utils.run_folder import run_folders


def resolve_checkpoint(config):
    """The checkpoint to evaluate: `checkpoint`, or the run's best model."""
    path = config.checkpoint or os.path.join(run_folders(config)[0], "best.keras")
    if not os.path.isfile(path):
        raise ConfigError(f"checkpoint={path!r}: model file not found; train first or set checkpoint=<path>")
    return path


def load_checkpoint(path, num_classes=None):
    """Loads a `.keras` model in safe mode (no arbitrary code) and checks its number of outputs."""
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # a torn or foreign file: say which one, not a stack trace
        raise ConfigError(f"checkpoint={path!r} cannot be loaded: {type(error).__name__}: {error}") from None
    outputs = model.output_shape[-1]
    if num_classes is not None and outputs != num_classes:
        raise ConfigError(f"checkpoint={path!r} predicts {outputs} classes, but the label file has {num_classes}")
    return model


def run_test(config):
    """Evaluates on the test split; returns the metrics dict (also written to metrics.json)."""
    table = load_split(config, "test_labels")
    if table is None:
        raise ConfigError("test_labels is empty; mode=test needs a label file")
    path = resolve_checkpoint(config)
    model = load_checkpoint(path, len(table.class_names))
    report = DecodeReport(table.images)
    dataset = make_dataset(table.images, table.labels, config, training=False, report=report)
    logits, labels, paths = predict_dataset(model, dataset)
    probabilities = sigmoid(logits)
    metrics = evaluate_all(labels, probabilities, table.class_names, threshold=config.threshold, top_k=3)
    skipped = report.skipped()
    metrics["checkpoint"] = path
    metrics["images"] = len(paths)
    metrics["skipped_images"] = skipped

    out_dir = run_folders(config)[0]
    metrics_path = os.path.join(out_dir, "metrics.json")
    predictions_path = os.path.join(out_dir, "predictions.csv")
    write_text(metrics_path, json.dumps(metrics, indent=2) + "\n")
    names = dict(zip(table.images, table.names))
    write_text(predictions_path, _predictions_csv([names.get(p, p) for p in paths], table.class_names, probabilities))
    _print_summary(metrics, table.class_names, skipped)
    print(f"Wrote {metrics_path}\nWrote {predictions_path}")
    return metrics


def _predictions_csv(names, class_names, probabilities):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["image", *class_names])
    for name, row in zip(names, probabilities):
        writer.writerow([name, *(f"{p:.6f}" for p in row)])
    return out.getvalue()


def _print_summary(metrics, class_names, skipped):
    print(f"\nTest mAP: {metrics['mAP']:.4f} over {metrics['images']} images")
    print(f"{'class':<24}AP")
    for name in class_names:
        ap = metrics["AP"][name]
        print(f"{name:<24}{'no positive test example (left out of the mean)' if ap is None else f'{ap:.4f}'}")
    for path in skipped:
        print(f"warning: skipped test image that failed to decode: {path}")
