"""Convert mode: a trained checkpoint to the deployment formats, then a parity report.

    python run.py mode=convert checkpoint=<path> formats=[...]

The files and what each takes are listed in multi_label/export/formats.py; they go to
models/<run_name>/export/, with parity.json and parity.md (multi_label/export/parity.py). A
`groups` head is exported to every format with one softmax output per group, named by the group.
"""

import os

from dataset.run_splits import load_split
from multi_label.calibration import load_calibration
from multi_label.export.float32_copy import compute_dtype_name, float32_copy
from multi_label.export.formats import EXPORTERS, calibration_batches, check_formats, export_formats
from multi_label.export.parity import parity_report
from multi_label.tasks.settings import pipeline_settings, split_settings
from multi_label.trained_run import (
    check_outputs,
    load_checkpoint,
    resolve_checkpoint,
    saved_class_names,
    trained_setting,
)
from utils.config import ConfigError
from utils.run_folder import run_folders


def run_convert(config):
    """mode=convert: loads the checkpoint, writes the configured formats and the parity report."""
    check_formats(config.formats)
    checkpoint = resolve_checkpoint(config.checkpoint, config.run_name)
    # checked first: a checkpoint of another kind of head stops here, before a label file is read
    trained = load_checkpoint(checkpoint, groups=config.groups, head=config.head)
    model = float32_copy(trained)  # the formats compute in float32 (multi_label/export/float32_copy.py)
    if model is not trained:
        print(f"{checkpoint} computes in {compute_dtype_name(trained)}; the formats are exported from its float32 "
              "copy (same weights), and the parity report compares both with them")
    if config.groups:  # the label columns are the groups; a group's classes are 0..K-1, chosen by argmax
        class_names, thresholds = list(config.groups), None
    else:
        class_names = read_class_names(config, checkpoint)
        check_outputs(model, checkpoint, len(class_names))
        thresholds = read_thresholds(config, checkpoint, class_names)
    image_size = int(trained_setting(checkpoint, "image_size", config.image_size))
    crop = float(trained_setting(checkpoint, "center_crop", config.center_crop))
    # images as the run was trained and tested on: its own size and crop
    pipeline = pipeline_settings(config, image_size=image_size, center_crop=crop)
    export_dir = os.path.join(run_folders(config.run_name)[0], "export")
    what = f"{len(class_names)} groups" if config.groups else f"{len(class_names)} classes"
    print(f"Exporting {checkpoint} ({what}, image_size {image_size}) to {export_dir}")
    calibration = None
    if any(EXPORTERS[name].calibrated for name in config.formats):
        table = load_split(split_settings(config), "train_labels", class_names)
        if table is None:
            raise ConfigError("train_labels is empty; tflite_int8 is calibrated on training images")
        calibration = calibration_batches(table, pipeline, config.calibration_images, config.seed)
    written = export_formats(model, config.formats, export_dir, class_names, thresholds, image_size, calibration,
                             crop, groups=config.groups)
    if not config.test_labels:
        print("No parity report: test_labels is empty")
        return
    table = load_split(split_settings(config), "test_labels", class_names)
    parity_report(model, written, table, pipeline, thresholds, export_dir, images=config.parity_images,
                  groups=config.groups, trained=None if model is trained else trained)


def read_class_names(config, checkpoint):
    """The class names from classes.json beside the checkpoint (written by the trainer), else train_labels."""
    names = saved_class_names(checkpoint)
    if names:
        return names
    table = load_split(split_settings(config), "train_labels")
    if table is None:
        raise ConfigError(f"checkpoint={checkpoint!r} has no classes.json beside it and train_labels is empty; "
                          "the export needs the class names")
    print(f"No classes.json beside {checkpoint}; class names from train_labels={config.train_labels!r}")
    return table.class_names


def read_thresholds(config, checkpoint, class_names):
    """The thresholds test and predict use: fitted per class (thresholds.json) or `threshold` for all.

    They apply to the plain sigmoid every format outputs; temperature scaling is not exported.
    """
    calibration = load_calibration(checkpoint, class_names, class_thresholds=config.class_thresholds,
                                   threshold=config.threshold)
    print(f"Thresholds in the export: {calibration.kind}"
          + ("" if calibration.kind == "fitted" else f" ({config.threshold} for every class)"))
    return calibration.thresholds
