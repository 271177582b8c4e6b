"""Loads a trained run: its checkpoint, class names, fitted thresholds and temperature, and its settings.

Training writes into the run folder models/<run_name>/, beside the model:

- `best.keras` (and `last.keras`): the model, loaded here in safe mode (no code from the file runs).
- `classes.json`: the class names, in output order (of a `groups` head: its groups, the label columns).
- `thresholds.json` and `calibration.json`: per-class thresholds and a temperature fitted on the
  validation split (`multi_label.evaluation.calibration` fits and writes them), with the
  checkpoint's SHA-256, so thresholds fitted for one model are never applied to another.
- `config.json`: the settings the run was trained with.

Fitted thresholds apply to the uncalibrated probabilities sigmoid(logits), the scores they were
fitted on, also when temperature scaling is on: the temperature then changes the probabilities
reported, never the labels predicted at fitted thresholds. (Mapping each threshold through the
temperature instead would be equivalent in exact arithmetic, but sigmoid saturates to 1.0 in
floating point, so near-certain images could change sides.) The fixed `threshold` applies to the
reported probabilities, calibrated or not.
"""

import hashlib
import json
import os
from typing import NamedTuple

import keras
import numpy as np

import multi_label.model  # noqa: F401  registers the custom layers (normalisation, backbones, heads) for safe loading
from multi_label.evaluation.groups import output_groups
from multi_label.evaluation.inference import sigmoid
from multi_label.evaluation.metrics import binarize
from multi_label.evaluation.thresholds import apply_temperature, load_thresholds
from utils.config import ConfigError
from utils.run_folder import run_folders

BEST_FILE = "best.keras"
CLASSES_FILE = "classes.json"
CONFIG_FILE = "config.json"
THRESHOLDS_FILE = "thresholds.json"
CALIBRATION_FILE = "calibration.json"


def resolve_checkpoint(checkpoint, run_name):
    """The checkpoint to use: `checkpoint`, or the run's best model.

    Args:
        checkpoint: str. A model file; "" for models/<run_name>/best.keras.
        run_name: str. The run whose best model is used when `checkpoint` is "".

    Raises:
        ConfigError: the file does not exist.
    """
    path = checkpoint or os.path.join(run_folders(run_name)[0], BEST_FILE)
    if not os.path.isfile(path):
        raise ConfigError(f"checkpoint={path!r}: model file not found; train first or set checkpoint=<path>")
    return path


def load_checkpoint(path, num_classes=None, groups=None, head=None):
    """Loads a `.keras` model in safe mode (no arbitrary code) and checks its outputs (`check_outputs`).

    Args:
        path: str. The model file.
        num_classes: int or None. The number of sigmoid outputs the model must give; None: not checked.
        groups: dict[str, int] or None. The groups ({group: classes}) of a `groups` head it must have.
        head: str or None. The `head` setting it is used with; None: either kind of head.
    """
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # a torn or foreign file: say which one, not a stack trace
        raise ConfigError(f"checkpoint={path!r} cannot be loaded: {type(error).__name__}: {error}") from None
    check_outputs(model, path, num_classes, groups, head)
    return model


def check_outputs(model, path, num_classes=None, groups=None, head=None):
    """Raises ConfigError (one line) when `model` is not the model the settings describe.

    Args:
        model: keras.Model. A loaded checkpoint.
        path: str. Its file, named in the message.
        num_classes: int or None. The number of logits it must give (one sigmoid per class); None: any.
        groups: dict[str, int] or None. The groups ({group: classes}) its outputs must be, one softmax
            each (a `groups` head); None: not checked.
        head: str or None. The `head` setting: "groups" needs a groups head, any other one sigmoid
            output per class. None: either kind, unless `num_classes` or `groups` says which.
    """
    found = output_groups(model)  # a groups head's outputs are {group: logits}
    if found is not None and (num_classes is not None or head not in (None, "groups")):
        expected = (f"{num_classes} sigmoid outputs" if num_classes is not None
                    else f"the sigmoid outputs of head={head!r}")
        raise ConfigError(f"checkpoint={path!r} has a head='groups' (one softmax per group), not {expected}; "
                          "use it with head='groups' and its groups")
    if found is None and (groups is not None or head == "groups"):
        raise ConfigError(f"checkpoint={path!r} has one sigmoid output per class ({model.output_shape[-1]}), not "
                          "head='groups' (one softmax per group); use it with the head it was trained with")
    if found is not None and groups is not None and found != dict(groups):
        raise ConfigError(f"checkpoint={path!r} has the groups {found}, but groups={dict(groups)}; expected the "
                          "groups it was trained with")
    if num_classes is not None and model.output_shape[-1] != num_classes:
        raise ConfigError(f"checkpoint={path!r} predicts {model.output_shape[-1]} classes, but the label file has "
                          f"{num_classes}")


def saved_class_names(checkpoint):
    """The class names in `classes.json` beside the checkpoint (written by the trainer); None if absent."""
    path = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), CLASSES_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            names = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read as a JSON list of class names ({error})") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{path}: expected a JSON list of class names")
    return names


def trained_setting(checkpoint, key, current):
    """A setting (e.g. image_size, center_crop) as the checkpoint's run saved it (its config.json), else `current`.

    The run's own value wins, so later modes see images as that run was trained and tested on; a
    difference is printed.

    Args:
        checkpoint: str. The model file; config.json is looked for beside it.
        key: str. The setting.
        current: object. The value of the settings in use, returned when the run did not save one.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), CONFIG_FILE)
    if not os.path.isfile(path):
        return current
    with open(path, encoding="utf-8") as f:
        trained = json.load(f).get(key, current)
    if trained != current:
        print(f"{key}: {trained} from {path} (the run's setting), not {current}")
    return trained


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


def load_calibration(model_path, class_names, thresholds="fitted", threshold=0.5, temperature_scaling=False):
    """The thresholds and temperature that test and predict apply to the model at `model_path`.

    Files that are missing, or were fitted for another model file, give the fixed threshold with a
    printed note; a file that cannot be read is a ConfigError naming it.

    Args:
        model_path: str. The checkpoint; the files are looked for in its folder.
        class_names: list[str]. The model's classes, in output order.
        thresholds: str. "fitted" (the fitted per-class thresholds, when there are) or "fixed".
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
    if thresholds == "fitted" and fitted is None:
        print(f"note: thresholds='fitted' but {problem}; using the fixed threshold={threshold} for every class")
    kind = "fitted" if thresholds == "fitted" and fitted is not None else "fixed"
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
