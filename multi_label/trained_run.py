"""Loads a trained run: its checkpoint, class names and the settings it was trained with.

Training writes into the run folder models/<run_name>/, beside the model:

- `best.keras` (and `last.keras`): the model, loaded here in safe mode (no code from the file runs).
- `classes.json`: the class names, in output order (of a `groups` head: its groups, the label columns).
- `thresholds.json` and `calibration.json`: per-class thresholds and a temperature fitted on the
  validation split; `multi_label/calibration.py` fits, writes and reads them.
- `config.json`: the settings the run was trained with.
"""

import json
import os

import keras

import multi_label.model  # noqa: F401  registers the custom layers (normalisation, backbones, heads) for safe loading
from multi_label.evaluation.group_metrics import output_groups
from utils.config import ConfigError
from utils.run_folder import run_folders

BEST_FILE = "best.keras"
CLASSES_FILE = "classes.json"
CONFIG_FILE = "config.json"


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
