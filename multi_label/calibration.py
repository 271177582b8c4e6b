"""Per-class thresholds and a temperature fitted on the validation split, saved beside the model and read back.

After training, `fit_and_save_calibration` writes two files next to the checkpoint:

- `thresholds.json`: per-class probability thresholds that maximise F1 on validation data
  (`multi_label.evaluation.thresholds.fit_thresholds` on sigmoid(logits)).
- `calibration.json`: the temperature T minimising validation BCE of sigmoid(logits / T), and
  the checkpoint's SHA-256, so thresholds fitted for one model are never applied to another.

Test, predict and convert read them back with `load_calibration`, as a `Calibration`.

Fitted thresholds apply to the uncalibrated probabilities sigmoid(logits), the scores they were
fitted on, also when temperature scaling is on: the temperature then changes the probabilities
reported, never the labels predicted at fitted thresholds. (Mapping each threshold through the
temperature instead would be equivalent in exact arithmetic, but sigmoid saturates to 1.0 in
floating point, so near-certain images could change sides.) The fixed `threshold` applies to the
reported probabilities, calibrated or not.

It stands beside `trained_run.py`, above `evaluation/`: fitting loads the checkpoint
(`trained_run.load_checkpoint`) and uses evaluation's inference, metrics and threshold fitting.
"""

import hashlib
import json
import os
from typing import NamedTuple

import numpy as np

from dataset.pipeline import DecodeReport, make_dataset
from multi_label.evaluation.inference import predict_dataset, sigmoid
from multi_label.evaluation.metrics import binarize, label_scores
from multi_label.evaluation.thresholds import (
    apply_temperature,
    fit_temperature,
    fit_thresholds,
    load_thresholds,
    save_thresholds,
)
from multi_label.trained_run import load_checkpoint
from utils.atomic import write_text
from utils.config import ConfigError

THRESHOLDS_FILE = "thresholds.json"
CALIBRATION_FILE = "calibration.json"


def fit_and_save_calibration(model_path, val_table, pipeline, threshold=0.5, encoded=None):
    """Fits per-class F1 thresholds and a temperature on the validation split; saves them beside the model.

    Args:
        model_path: str. The checkpoint the thresholds are fitted for (e.g. models/<run>/best.keras).
        val_table: LabelTable or None. The validation split (`dataset.run_splits.load_split(...,
            "val_labels", ...)`); None when there is none.
        pipeline: PipelineSettings. How the validation images are read (`dataset.pipeline`).
        threshold: float. The fixed threshold, whose validation CF1 is reported beside the fitted ones'.
        encoded: tf.data.Dataset or None. The validation split's (bytes, labels, name) records from its
            TFRecords (`data_format="tfrecord"`); None: the image files.

    Returns:
        dict or None. The calibration.json contents; None when there is no validation split or no
        model file (a note says so and test/predict then use the fixed threshold).
    """
    if val_table is None or not os.path.isfile(model_path):
        missing = "val_labels is empty" if val_table is None else f"{model_path} does not exist"
        print(f"note: no per-class thresholds fitted ({missing}); test and predict use threshold={threshold}")
        return None
    model = load_checkpoint(model_path, len(val_table.class_names))
    names = val_table.images if encoded is None else val_table.names
    report = DecodeReport(names)
    logits, labels, _ = predict_dataset(model, make_dataset(names, val_table.labels, pipeline, training=False,
                                                            report=report, encoded=encoded))
    if not len(labels):
        print(f"note: no per-class thresholds fitted (no image of val_labels={val_table.source!r} could be decoded)")
        return None
    probabilities = sigmoid(logits)
    thresholds = fit_thresholds(labels, probabilities)
    temperature = fit_temperature(labels, logits)
    folder = os.path.dirname(model_path)
    info = {
        "temperature": temperature,
        "checkpoint": os.path.basename(model_path),
        "checkpoint_sha256": file_sha256(model_path),
        "val_labels": val_table.source,
        "val_images": len(labels),
        "val_positives_min": int((labels == 1).sum(axis=0).min()),
        "val_CF1_fixed": label_scores(labels, binarize(probabilities, threshold))["CF1"],
        "val_CF1_fitted": label_scores(labels, binarize(probabilities, thresholds))["CF1"],
        "fixed_threshold": threshold,
    }
    save_thresholds(os.path.join(folder, THRESHOLDS_FILE), val_table.class_names, thresholds)
    write_text(os.path.join(folder, CALIBRATION_FILE), json.dumps(info, indent=2) + "\n")
    print(f"Fitted per-class thresholds on {len(labels)} validation images: val CF1 {info['val_CF1_fixed']:.4f} at "
          f"threshold={threshold} -> {info['val_CF1_fitted']:.4f} at the fitted thresholds; "
          f"temperature {temperature:.4f}. Wrote {os.path.join(folder, THRESHOLDS_FILE)} and {CALIBRATION_FILE}")
    for path in report.skipped():
        print(f"warning: skipped validation image that failed to decode: {path}")
    return info


class Calibration(NamedTuple):
    """How logits become probabilities and labels at test and predict time.

    Args:
        thresholds: np.ndarray. Float [C], the thresholds in use, applied to `scores(logits)`.
        temperature: float or None. Reported probabilities are sigmoid(logits / temperature);
            None: sigmoid(logits).
        kind: str. "fitted" or "fixed", the thresholds actually in use.
        fitted: np.ndarray or None. The fitted thresholds (on sigmoid(logits)), when a
            thresholds file exists for this checkpoint (for the fixed-vs-fitted comparison).
        info: dict. The contents of calibration.json ({} when missing).
    """

    thresholds: np.ndarray
    temperature: object
    kind: str
    fitted: object
    info: dict

    def probabilities(self, logits):
        """The probabilities to report: sigmoid of the logits, temperature-scaled when enabled."""
        return sigmoid(logits if self.temperature is None else apply_temperature(logits, self.temperature))

    def scores(self, logits, kind=None):
        """The probabilities that thresholds of `kind` (default: the kind in use) are compared with."""
        return sigmoid(logits) if (kind or self.kind) == "fitted" else self.probabilities(logits)

    def predict(self, logits):
        """Bool [N, C]: the labels predicted with the thresholds in use."""
        return binarize(self.scores(logits), self.thresholds)


def load_calibration(model_path, class_names, class_thresholds="fitted", threshold=0.5, temperature_scaling=False):
    """The thresholds and temperature that test and predict apply to the model at `model_path`.

    Files that are missing, or were fitted for another model file, give the fixed threshold with a
    printed note; a file that cannot be read is a ConfigError naming it.

    Args:
        model_path: str. The checkpoint; the files are looked for in its folder.
        class_names: list[str]. The model's classes, in output order.
        class_thresholds: str. "fitted" (the fitted per-class thresholds, when there are) or "fixed".
        threshold: float. The fixed threshold, for every class.
        temperature_scaling: bool. Scale the reported probabilities by the fitted temperature.

    Returns:
        Calibration.
    """
    folder = os.path.dirname(model_path)
    info = _read_info(os.path.join(folder, CALIBRATION_FILE))
    thresholds_path = os.path.join(folder, THRESHOLDS_FILE)
    stale = bool(info.get("checkpoint_sha256")) and info["checkpoint_sha256"] != file_sha256(model_path)
    fitted, problem = None, None
    if stale:
        problem = (f"{thresholds_path} was fitted for another model file than {model_path} (its SHA-256 differs); "
                   "run the training command again to refit")
    elif not os.path.isfile(thresholds_path):
        problem = f"{thresholds_path} not found (it is written after training when val_labels is set)"
    else:
        try:
            fitted = load_thresholds(thresholds_path, class_names)
        except ValueError as error:
            raise ConfigError(str(error)) from None
    temperature = None
    if temperature_scaling:
        if not stale and "temperature" in info:
            temperature = float(info["temperature"])
        else:
            print(f"note: temperature_scaling=True but no temperature fitted for {model_path}; probabilities are "
                  "not scaled")
    if class_thresholds == "fitted" and fitted is None:
        print(f"note: class_thresholds='fitted' but {problem}; using the fixed threshold={threshold} for every class")
    kind = "fitted" if class_thresholds == "fitted" and fitted is not None else "fixed"
    used = fitted if kind == "fitted" else np.full(len(class_names), threshold)
    return Calibration(thresholds=used, temperature=temperature, kind=kind, fitted=fitted, info=info)


def file_sha256(path):
    """The SHA-256 of a file, as hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_info(path):
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: not a calibration file written after training ({error})") from None
    if not isinstance(info, dict):
        raise ConfigError(f"{path}: not a calibration file written after training (expected a JSON object)")
    return info
