"""Loads and checks the label files of a run before any work starts."""

import os

from dataset.demo import build_demo_data
from dataset.labels import read_labels
from utils.config import ConfigError


def ensure_demo_data(config):
    """Generates the demo data when a configured label file inside `demo_data_dir` is missing."""
    folder = os.path.abspath(config.demo_data_dir)
    wanted = [config.train_labels, config.val_labels, config.test_labels]
    missing = [p for p in wanted if p and os.path.abspath(p).startswith(folder + os.sep) and not os.path.isfile(p)]
    if missing:
        print(f"Building the demo data in {config.demo_data_dir} ({config.demo_images} images, seed {config.seed})")
        build_demo_data(config.demo_data_dir, config.demo_images, config.seed, groups=bool(config.groups))


def load_split(config, key, class_names=None):
    """Reads the label file named by config key `key` ("train_labels", ...); None when it is "".

    Raises ConfigError naming the key when the file is missing, empty or has other classes.
    """
    path = getattr(config, key)
    if not path:
        return None
    if not os.path.isfile(path):
        raise ConfigError(f"{key}={path!r}: label file not found")
    table = read_labels(path, class_names=config.class_names, image_root=config.image_root, groups=config.groups)
    if class_names is not None and table.class_names != list(class_names):
        raise ConfigError(
            f"{key}={path!r} has classes {table.class_names}, but the model has {list(class_names)}; "
            "all splits must name the same classes in the same order")
    return table


def load_training_splits(config):
    """Returns (train, val or None) label tables, checked against each other and the batch size."""
    train = load_split(config, "train_labels")
    if train is None:
        raise ConfigError("train_labels is empty; training needs a label file")
    if len(train) < config.batch_size:
        raise ConfigError(
            f"train_labels={config.train_labels!r} has {len(train)} images, fewer than batch_size="
            f"{config.batch_size}; lower batch_size")
    val = load_split(config, "val_labels", train.class_names)
    if config.test_labels:
        load_split(config, "test_labels", train.class_names)  # fail now, not after hours of training
    return train, val


def tfrecord_source(config, table):
    """Returns a dataset of (encoded bytes, labels, name) read from TFRecord shards of `table`.

    The shards live in `<label file>.tfrecords/` (or `tfrecord_dir/<label file name>/`); they are
    written on first use and again whenever the label file is newer than them, so editing the
    labels never trains on stale records.
    """
    import json

    from dataset.tfrecord import tfrecord_dataset, write_tfrecords

    stem = os.path.splitext(os.path.basename(table.source))[0]
    folder = (os.path.join(config.tfrecord_dir, stem) if config.tfrecord_dir
              else os.path.splitext(table.source)[0] + ".tfrecords")
    sidecar = os.path.join(folder, "data.json")
    fresh = False
    if os.path.isfile(sidecar) and os.path.getmtime(sidecar) >= os.path.getmtime(table.source):
        with open(sidecar) as f:
            info = json.load(f)
        fresh = info.get("num_examples") == len(table) and info.get("class_names") == table.class_names
    if fresh:
        shards = [os.path.join(folder, s["file"]) for s in info["shards"]]
    else:
        print(f"Writing TFRecords for {table.source} into {folder}")
        shards = write_tfrecords(table, folder)
    return tfrecord_dataset(shards, len(table.class_names), shuffle_files=True, seed=config.seed)
