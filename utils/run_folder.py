"""The run folders models/<run_name>/ and logs/<run_name>/, and the guard that keeps runs apart.

A run folder belongs to the settings that trained it. Starting a run with other training
settings in the same folder stops with the differences listed, unless `overwrite=True`, which
moves the old folders aside (never deletes them).
"""

import json
import os
import time

from utils.atomic import write_text
from utils.config import ConfigError, renamed_settings

# Settings that do not change what training produces; a run may be resumed with these changed.
NOT_TRAINING = {
    "mode", "overwrite", "checkpoint", "test_labels", "threshold", "thresholds", "temperature_scaling",
    "input", "output", "report", "report_examples", "report_max_classes",  # test, predict, reports
    "formats", "parity_images", "calibration_images",  # convert
    "prune_ratio", "prune_dir",  # prune: read from a trained run, written to a new folder
    "import_format", "import_source", "import_output", "import_options",  # data tools
    "save_every_steps",  # how often the backup is written, not what is trained
    "label_error_folds", "label_error_epochs", "label_error_examples",  # find_label_errors: its folds are own runs
}


def run_folders(run_name):
    """Returns (models/<run_name>, logs/<run_name>).

    Args:
        run_name: str. The run's name.
    """
    return os.path.join("models", run_name), os.path.join("logs", run_name)


def saved_settings(run_name):
    """The settings dict saved in models/<run_name>/config.json by the run that trained there, or None."""
    saved = os.path.join(run_folders(run_name)[0], "config.json")
    if not os.path.isfile(saved):
        return None
    with open(saved) as f:
        return renamed_settings(json.load(f))


def changed_settings(previous, settings):
    """The training settings whose values differ between a saved run's settings and `settings`, in order.

    A setting the saved run does not know (added to the project later) is not a difference, nor
    one of NOT_TRAINING.
    """
    return [k for k in settings if k not in NOT_TRAINING and k in previous and _norm(previous[k]) != _norm(settings[k])]


def prepare_run_folder(run_name, settings, overwrite=False):
    """Creates the run folders for training, guarding a folder that holds a different run.

    The settings are saved as `config.json` in the model folder, where the next run with this
    name compares its own with them.

    Args:
        run_name: str. The run's name.
        settings: dict. Every setting of the run, name -> value (`dataclasses.asdict(config)`).
        overwrite: bool. Move a run with different training settings aside instead of stopping.

    Returns:
        (str, str). The model folder and the log folder.
    """
    model_dir, log_dir = run_folders(run_name)
    saved = os.path.join(model_dir, "config.json")
    previous = saved_settings(run_name)
    if previous is not None:
        changed = changed_settings(previous, settings)
        if changed:
            if not overwrite:
                shown = ", ".join(f"{k}: {previous.get(k)!r} -> {settings[k]!r}" for k in changed[:5])
                raise ConfigError(
                    f"{model_dir} holds a run with different settings ({shown}); use another run_name, "
                    f"or overwrite=True to move that run aside")
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for folder in (model_dir, log_dir):
                if os.path.isdir(folder):
                    os.replace(folder, f"{folder}.replaced-{stamp}")
                    print(f"Moved the previous run {folder} to {folder}.replaced-{stamp}")
    os.makedirs(model_dir, exist_ok=True)
    os.makedirs(log_dir, exist_ok=True)
    write_text(saved, json.dumps(settings, indent=2) + "\n")
    return model_dir, log_dir


def _norm(value):
    # JSON turns tuples into lists; compare the values, not the containers
    return json.loads(json.dumps(value))
