"""Predict mode: labels an image, a folder of images or the images of a label file with a checkpoint.

    python run.py mode=predict checkpoint=models/demo/best.keras input=photos/ output=labels.csv

Writes, per image, the predicted labels (at the per-class thresholds fitted on validation, or
the fixed `threshold`) and every class probability. A `groups` head (one softmax per attribute
group) gets, per group, its most probable class and the probability of each of its classes (the
classes of a group are its label values 0..K-1). Files that fail to decode are skipped and
named; the rest are labelled. Up to SHOWN_IMAGES images, each one's labels are printed with their
probabilities, most probable first (a groups head: each group's class); then one summary line
with the path written.
"""

import csv
import io
import json
import os

import numpy as np
from tqdm import tqdm

from dataset.labels import read_labels
from dataset.pipeline import DecodeReport, make_dataset
from multi_label.calibration import load_calibration
from multi_label.evaluation.group_metrics import predict_groups
from multi_label.evaluation.inference import output_probabilities, predict_dataset
from multi_label.tasks.inputs import encoded_images
from multi_label.tasks.settings import pipeline_settings
from multi_label.trained_run import load_checkpoint, resolve_checkpoint, saved_class_names
from utils.atomic import write_text
from utils.config import ConfigError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
LABEL_SEPARATOR = ";"  # joins the predicted class names in the CSV's `labels` column
NOTED_FILES = 20  # non-image files named one by one before "and N more"
SHOWN_IMAGES = 20  # up to this many images, each one's labels are printed too; more: a one-line summary


def run_predict(config):
    """Labels the images named by `input` and writes `output` (default: predict.csv beside the checkpoint)."""
    if not config.input:
        raise ConfigError("input is empty; mode=predict needs input=<image | folder | label file>")
    checkpoint = resolve_checkpoint(config.checkpoint, config.run_name)
    # a groups head's label columns are its groups, checked against the checkpoint's outputs
    class_names = list(config.groups) if config.groups else saved_class_names(checkpoint)
    if class_names is None:
        raise ConfigError(f"checkpoint={checkpoint!r}: no classes.json beside it; expected the class list the "
                          "trainer writes into the run folder")
    output = config.output or os.path.join(os.path.dirname(checkpoint), "predict.csv")
    model = load_checkpoint(checkpoint, None if config.groups else len(class_names), config.groups, config.head)
    # a label file is read once: its images, and with data_format="tfrecord" its shards
    table = input_table(config.input, class_names, config.image_root, config.groups)
    files, names = ((table.images, table.names) if table is not None
                    else collect_inputs(config.input, class_names, config.image_root, config.groups))
    calibration = None if config.groups else load_calibration(
        checkpoint, class_names, class_thresholds=config.class_thresholds, threshold=config.threshold,
        temperature_scaling=config.temperature_scaling)

    # TFRecord shards yield each image by its name in the label file
    encoded = None if table is None else encoded_images(config, table)
    files = files if encoded is None else names
    report = DecodeReport(files)
    # one pass over the images: caching them would only hold memory
    dataset = make_dataset(files, np.zeros((len(files), len(class_names)), np.int32),
                           pipeline_settings(config, cache_images=False), training=False, report=report,
                           encoded=encoded)
    with tqdm(total=len(files), desc="predict", unit="img", disable=None) as bar:
        if config.groups:
            logits, _, done = predict_groups(model, dataset, class_names, progress=bar.update)
        else:
            logits, _, done = predict_dataset(model, dataset, progress=bar.update)
    name_of = dict(zip(files, names))
    skipped = [name_of[p] for p in report.skipped()]
    rows = [name_of[p] for p in done]
    as_json = output.lower().endswith(".json")
    if config.groups:
        text, lines, summary = group_outputs(rows, logits, config.groups, skipped, checkpoint, as_json)
    else:
        text, lines, summary = sigmoid_outputs(rows, logits, class_names, calibration, config.threshold, skipped,
                                               checkpoint, as_json)
    write_text(output, text)
    for name in skipped:
        print(f"warning: skipped unreadable image (failed to read or decode): {name}")
    if 0 < len(rows) <= SHOWN_IMAGES:
        print("\n".join(lines))
    print(f"{summary}; wrote {output}")


def sigmoid_outputs(names, logits, class_names, calibration, threshold, skipped, checkpoint, as_json):
    """The file's text, the per-image lines and the summary of a sigmoid head's predictions.

    Args:
        names: list[str]. The images labelled.
        logits: np.ndarray. [N, C] the model's logits.
        class_names: list[str]. One per class.
        calibration: Calibration. The thresholds and temperature in use.
        threshold: float. The fixed threshold (named in the summary when in use).
        skipped: list[str]. The images that could not be read.
        checkpoint: str. The model file (named in the JSON).
        as_json: bool. Write JSON, not CSV.
    """
    probabilities = calibration.probabilities(logits)
    predicted = calibration.predict(logits)
    if as_json:
        text = _json(names, class_names, probabilities, predicted, skipped, checkpoint, calibration)
    else:
        text = _csv(names, class_names, probabilities, predicted)
    thresholds = "per-class fitted" if calibration.kind == "fitted" else f"fixed {threshold:g}"
    counts = np.asarray(predicted, bool).reshape(len(names), -1).sum(axis=1)  # labels per image
    summary = (f"Labelled {len(names)} images ({len(skipped)} skipped) with {thresholds} thresholds: "
               f"{counts.mean() if len(counts) else 0:.2f} labels per image, {int((counts == 0).sum())} with none")
    return text, label_lines(names, class_names, probabilities, predicted), summary


def group_outputs(names, logits, groups, skipped, checkpoint, as_json):
    """The file's text, the per-image lines and the summary of a `groups` head's predictions.

    Per image and group: the softmax probability of each class and the most probable class. The
    CSV has the columns `image`, then `<group>` (the predicted class) for each group, then
    `<group>:<class>` (its probability) for each group and class; the JSON has per image
    `classes` ({group: class}) and `probabilities` ({group: [one per class]}).

    Args:
        names: list[str]. The images labelled.
        logits: dict[str, np.ndarray]. Group -> [N, K] the model's logits.
        groups: dict[str, int]. Group -> K, in label-column order.
        skipped: list[str]. The images that could not be read.
        checkpoint: str. The model file (named in the JSON).
        as_json: bool. Write JSON, not CSV.
    """
    probabilities = output_probabilities({group: logits[group] for group in groups})
    predicted = {group: np.argmax(values, axis=1) for group, values in probabilities.items()}
    if as_json:
        text = json.dumps({
            "checkpoint": checkpoint,
            "groups": dict(groups),
            "predictions": [
                {"image": name, "classes": {g: int(predicted[g][i]) for g in groups},
                 "probabilities": {g: [round(float(p), 6) for p in probabilities[g][i]] for g in groups}}
                for i, name in enumerate(names)],
            "skipped": skipped,
        }, indent=2) + "\n"
    else:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["image", *groups, *(f"{g}:{k}" for g, size in groups.items() for k in range(size))])
        for i, name in enumerate(names):
            writer.writerow([name, *(int(predicted[g][i]) for g in groups),
                             *(f"{p:.6f}" for g in groups for p in probabilities[g][i])])
        text = out.getvalue()
    width = max((len(name) for name in names), default=0) + 2
    lines = [f"{name:<{width}}" + ", ".join(f"{g}={predicted[g][i]} ({probabilities[g][i, predicted[g][i]]:.2f})"
                                            for g in groups) for i, name in enumerate(names)]
    summary = (f"Labelled {len(names)} images ({len(skipped)} skipped) with the most probable class of each of "
               f"{len(groups)} groups ({', '.join(groups)})")
    return text, lines, summary


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


def collect_inputs(source, class_names, image_root=None, groups=None):
    """The image files to label and the names they get in the output.

    Args:
        source: str. An image file, a folder (searched recursively for IMAGE_EXTENSIONS, any
            case; other files are skipped with a note) or a label file (its images).
        class_names: list[str]. The model's classes (a text label file needs them).
        image_root: str or None. Folder that a label file's image paths are relative to.
        groups: dict[str, int] or None. A `groups` head's groups: a label file then holds class indices.

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
        table = input_table(source, class_names, image_root, groups)
        return table.images, table.names
    raise ConfigError(f"input={source!r}: not found; expected an image, a folder of images or a label file")


def input_table(source, class_names, image_root=None, groups=None):
    """The LabelTable of a label file given as `input` (`collect_inputs`'s arguments); None for an image or a folder."""
    if not os.path.isfile(source) or source.lower().endswith(IMAGE_EXTENSIONS):
        return None
    # a CSV names its classes in its header; its label values are not needed here
    is_csv = source.lower().endswith(".csv")
    return read_labels(source, class_names=None if is_csv else class_names, image_root=image_root, groups=groups)


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
