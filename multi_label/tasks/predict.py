"""Predict mode: labels an image, a folder of images or the images of a label file with a checkpoint.

    python run.py mode=predict checkpoint=models/demo/best.keras input=photos/ output=labels.csv

Writes, per image, the predicted labels (at the per-class thresholds fitted on validation, or
the fixed `threshold`) and every class probability. Files that fail to decode are skipped and
named; the rest are labelled. Up to SHOWN_IMAGES images, each one's labels are printed with their
probabilities, most probable first; then one summary line with the path written.
"""

import csv
import io
import json
import os

import numpy as np
from tqdm import tqdm

from dataset.labels import read_labels
from dataset.pipeline import DecodeReport, PipelineSettings, make_dataset
from multi_label.evaluation.inference import predict_dataset
from multi_label.trained_run import (
    groups_unsupported,
    load_calibration,
    load_checkpoint,
    resolve_checkpoint,
    saved_class_names,
)
from utils.atomic import write_text
from utils.config import ConfigError
from utils.settings import pick

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
LABEL_SEPARATOR = ";"  # joins the predicted class names in the CSV's `labels` column
NOTED_FILES = 20  # non-image files named one by one before "and N more"
SHOWN_IMAGES = 20  # up to this many images, each one's labels are printed too; more: a one-line summary


def run_predict(config):
    """Labels the images named by `input` and writes `output` (default: predict.csv beside the checkpoint)."""
    if config.groups:
        raise groups_unsupported("predict")
    if not config.input:
        raise ConfigError("input is empty; mode=predict needs input=<image | folder | label file>")
    checkpoint = resolve_checkpoint(config.checkpoint, config.run_name)
    class_names = saved_class_names(checkpoint)
    if class_names is None:
        raise ConfigError(f"checkpoint={checkpoint!r}: no classes.json beside it; expected the class list the "
                          "trainer writes into the run folder")
    output = config.output or os.path.join(os.path.dirname(checkpoint), "predict.csv")
    model = load_checkpoint(checkpoint, len(class_names), mode="predict")
    files, names = collect_inputs(config.input, class_names, config.image_root)
    calibration = load_calibration(checkpoint, class_names, thresholds=config.thresholds, threshold=config.threshold,
                                   temperature_scaling=config.temperature_scaling)

    report = DecodeReport(files)
    # one pass over the images: caching them would only hold memory
    dataset = make_dataset(files, np.zeros((len(files), len(class_names)), np.int32),
                           pick(PipelineSettings, config, cache_images=False), training=False, report=report)
    with tqdm(total=len(files), desc="predict", unit="img", disable=None) as bar:
        logits, _, done = predict_dataset(model, dataset, progress=bar.update)
    probabilities = calibration.probabilities(logits)
    predicted = calibration.predict(logits)
    name_of = dict(zip(files, names))
    skipped = [name_of[p] for p in report.skipped()]
    rows = [name_of[p] for p in done]
    if output.lower().endswith(".json"):
        text = _json(rows, class_names, probabilities, predicted, skipped, checkpoint, calibration)
    else:
        text = _csv(rows, class_names, probabilities, predicted)
    write_text(output, text)
    for name in skipped:
        print(f"warning: skipped unreadable image (failed to read or decode): {name}")
    if 0 < len(rows) <= SHOWN_IMAGES:
        print("\n".join(label_lines(rows, class_names, probabilities, predicted)))
    thresholds = "per-class fitted" if calibration.kind == "fitted" else f"fixed {config.threshold:g}"
    counts = np.asarray(predicted, bool).reshape(len(rows), -1).sum(axis=1)  # labels per image
    print(f"Labelled {len(rows)} images ({len(skipped)} skipped) with {thresholds} thresholds: "
          f"{counts.mean() if len(counts) else 0:.2f} labels per image, {int((counts == 0).sum())} with none; "
          f"wrote {output}")


def label_lines(names, class_names, probabilities, predicted):
    """One line per image: its predicted labels with their probabilities, most probable first.

    An image with no label above its threshold gets its most probable class instead, said so.

    Args:
        names: list[str]. The images' names.
        class_names: list[str]. One per class.
        probabilities: np.ndarray. [N, C] class probabilities.
        predicted: np.ndarray. [N, C] booleans, the labels predicted at the thresholds in use.
    """
    width = max((len(name) for name in names), default=0) + 2
    lines = []
    for name, row, chosen in zip(names, probabilities, predicted):
        order = [i for i in np.argsort(-row, kind="stable") if chosen[i]]
        if order:
            labels = ", ".join(f"{class_names[i]} {row[i]:.2f}" for i in order)
        else:
            best = int(np.argmax(row))
            labels = f"no label above its threshold (most probable: {class_names[best]} {row[best]:.2f})"
        lines.append(f"{name:<{width}}{labels}")
    return lines


def collect_inputs(source, class_names, image_root=None):
    """The image files to label and the names they get in the output.

    Args:
        source: str. An image file, a folder (searched recursively for IMAGE_EXTENSIONS, any
            case; other files are skipped with a note) or a label file (its images).
        class_names: list[str]. The model's classes (a text label file needs them).
        image_root: str or None. Folder that a label file's image paths are relative to.

    Returns:
        (list[str], list[str]). Files to read and their names: paths relative to the folder, the
        path as given for one image, or the paths as written in the label file.
    """
    if os.path.isdir(source):
        files, others = [], []
        for folder, subfolders, entries in os.walk(source):
            subfolders.sort()
            for entry in sorted(entries):
                (files if entry.lower().endswith(IMAGE_EXTENSIONS) else others).append(os.path.join(folder, entry))
        if others:
            shown = ", ".join(os.path.relpath(p, source) for p in others[:NOTED_FILES])
            more = f" and {len(others) - NOTED_FILES} more" if len(others) > NOTED_FILES else ""
            plural = "s" if len(others) != 1 else ""
            print(f"note: skipped {len(others)} non-image file{plural} in {source} (not {'/'.join(IMAGE_EXTENSIONS)}): "
                  f"{shown}{more}")
        if not files:
            raise ConfigError(f"input={source!r}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
        return files, [os.path.relpath(p, source).replace(os.sep, "/") for p in files]
    if os.path.isfile(source):
        if source.lower().endswith(IMAGE_EXTENSIONS):
            return [source], [source]
        # a CSV names its classes in its header; its label values are not needed here
        is_csv = source.lower().endswith(".csv")
        table = read_labels(source, class_names=None if is_csv else class_names, image_root=image_root)
        return table.images, table.names
    raise ConfigError(f"input={source!r}: not found; expected an image, a folder of images or a label file")


def _csv(names, class_names, probabilities, predicted):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["image", "labels", *class_names])
    for name, row, chosen in zip(names, probabilities, predicted):
        labels = LABEL_SEPARATOR.join(c for c, on in zip(class_names, chosen) if on)
        writer.writerow([name, labels, *(f"{p:.6f}" for p in row)])
    return out.getvalue()


def _json(names, class_names, probabilities, predicted, skipped, checkpoint, calibration):
    document = {
        "checkpoint": checkpoint,
        "thresholds": dict(zip(class_names, np.asarray(calibration.thresholds, np.float64).tolist())),
        "thresholds_kind": calibration.kind,
        "temperature": calibration.temperature,
        "predictions": [
            {"image": name, "labels": [c for c, on in zip(class_names, chosen) if on],
             "probabilities": {c: round(float(p), 6) for c, p in zip(class_names, row)}}
            for name, row, chosen in zip(names, probabilities, predicted)],
        "skipped": skipped,
    }
    return json.dumps(document, indent=2) + "\n"
