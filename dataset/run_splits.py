"""Loads and checks the label files of a run before any work starts.

Errors name the setting that holds the file (`train_labels='x.csv': label file not found`), so
the user knows what to fix.
"""

import dataclasses
import os
from typing import Optional

from dataset.labels import read_labels
from utils.config import ConfigError
from utils.defaults import DEFAULTS

SPLIT_KEYS = ("train_labels", "val_labels", "test_labels")  # the settings that name a split's label file


@dataclasses.dataclass(frozen=True)
class SplitSettings:
    """The label files of a run and how to read them; names and defaults are configs.py's.

    A task builds it with `multi_label.tasks.settings.split_settings(config)`. An empty label file name
    means the split is not used.
    """

    train_labels: str = DEFAULTS.train_labels
    val_labels: str = DEFAULTS.val_labels
    test_labels: str = DEFAULTS.test_labels
    image_root: Optional[str] = DEFAULTS.image_root
    class_names: Optional[list] = DEFAULTS.class_names
    groups: Optional[dict] = DEFAULTS.groups
    batch_size: int = DEFAULTS.batch_size


def split_path(settings, key):
    """The label file named by setting `key`, or "" when there is none.

    Args:
        settings: SplitSettings. The label files.
        key: str. One of `SPLIT_KEYS`.

    Raises:
        ConfigError: the file is missing; the message names `key`.
    """
    if key not in SPLIT_KEYS:
        raise ValueError(f"key must be one of {list(SPLIT_KEYS)}. Received: key={key!r}")
    path = {"train_labels": settings.train_labels, "val_labels": settings.val_labels,
            "test_labels": settings.test_labels}[key]
    if path and not os.path.isfile(path):
        raise ConfigError(f"{key}={path!r}: label file not found")
    return path


def load_split(settings, key, class_names=None):
    """Reads the label file named by setting `key` ("train_labels", ...); None when it is "".

    Args:
        settings: SplitSettings. The label files and how to read them.
        key: str. One of `SPLIT_KEYS`.
        class_names: list[str] or None. The model's classes: the file must name the same, in the same order.

    Returns:
        LabelTable or None.

    Raises:
        ConfigError: naming `key`, when the file is missing, empty or has other classes.
    """
    path = split_path(settings, key)
    if not path:
        return None
    table = read_labels(path, class_names=settings.class_names, image_root=settings.image_root,
                        groups=settings.groups)
    if class_names is not None and table.class_names != list(class_names):
        raise ConfigError(
            f"{key}={path!r} has classes {table.class_names}, but the model has {list(class_names)}; "
            "all splits must name the same classes in the same order")
    return table


def load_training_splits(settings):
    """Returns (train, val or None) label tables, checked against each other and the batch size.

    The test split is read too, when set, so that a broken file fails now, not after hours of training.

    Args:
        settings: SplitSettings. The label files, how to read them, and batch_size.
    """
    train = load_split(settings, "train_labels")
    if train is None:
        raise ConfigError("train_labels is empty; training needs a label file")
    if len(train) < settings.batch_size:
        raise ConfigError(
            f"train_labels={settings.train_labels!r} has {len(train)} images, fewer than batch_size="
            f"{settings.batch_size}; lower batch_size")
    val = load_split(settings, "val_labels", train.class_names)
    if settings.test_labels:
        load_split(settings, "test_labels", train.class_names)
    return train, val
