"""Per-class thresholds and a temperature fitted on the validation split, saved beside the model.

After training, `fit_and_save_calibration` writes two files next to the checkpoint:

- `thresholds.json`: per-class probability thresholds that maximise F1 on validation data
  (`multi_label.evaluation.thresholds.fit_thresholds` on sigmoid(logits)).
- `calibration.json`: the temperature T minimising validation BCE of sigmoid(logits / T), and
  the checkpoint's SHA-256, so thresholds fitted for one model are never applied to another.

Test and predict read them back with `multi_label.trained_run.load_calibration`, which also says
how thresholds and temperature apply.
"""

import json
import os

from dataset.pipeline import DecodeReport, make_dataset
from multi_label.evaluation.inference import predict_dataset, sigmoid
from multi_label.evaluation.metrics import binarize, label_scores
from multi_label.evaluation.thresholds import fit_temperature, fit_thresholds, save_thresholds
from multi_label.trained_run import CALIBRATION_FILE, THRESHOLDS_FILE, file_sha256, load_checkpoint
from utils.atomic import write_text


def fit_and_save_calibration(model_path, val_table, pipeline, threshold=0.5, encoded=None):
    """Fits per-class F1 thresholds and a temperature on the validation split; saves them beside the model.

    Args:
        model_path: str. The checkpoint the thresholds are fitted for (e.g. models/<run>/best.keras).
        val_table: LabelTable or None. The validation split (`dataset.splits.load_split(...,
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
