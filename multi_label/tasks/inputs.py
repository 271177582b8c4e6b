"""The images of a label table for any mode: read from the image files or from TFRecord shards (`data_format`)."""

import dataclasses

from dataset.pipeline import DecodeReport, cache_bytes, make_dataset
from dataset.tfrecord import tfrecord_source
from multi_label.tasks.settings import pipeline_settings
from utils.memory import available_memory

GIB = 1 << 30


def encoded_images(config, table):
    """The (encoded bytes, labels, name) records of `table` from its TFRecord shards, or None to read the files.

    The shards are written on first use and again when the label file is newer (`tfrecord_source`).
    They are read in the label file's order (shard `s` holds rows `s, s + n, ...` and the shards are
    interleaved one record at a time), the order the image files are read in: training, test and
    predict from TFRecords see the very images of a run from files, in the same order, and the
    epoch's shuffle does the mixing in both (tests/test_tfrecord.py).
    """
    if config.data_format != "tfrecord":
        return None
    return tfrecord_source(table, config.tfrecord_dir, seed=config.seed, shuffle_files=False)


def image_names(table, data_format):
    """What the records of `table` are named by: the label file's paths in TFRecords, else the resolved files."""
    return table.names if data_format == "tfrecord" else table.images


def input_dataset(config, table, training, batch_size=None, first_epoch=0, steps_per_epoch=None):
    """Returns (dataset, DecodeReport) for a label table, from image files or TFRecords (`data_format`).

    `batch_size` (default config.batch_size) is the global batch when training under a strategy;
    `first_epoch` and `steps_per_epoch` are `dataset.pipeline.make_dataset`'s. An evaluation
    dataset yields each image's name as `image_names` gives it.
    """
    encoded = encoded_images(config, table)
    names = image_names(table, config.data_format)
    report = DecodeReport(names)
    dataset = make_dataset(names, table.labels, pipeline_settings(config), training, batch_size=batch_size,
                           report=report, encoded=encoded, first_epoch=first_epoch, steps_per_epoch=steps_per_epoch)
    return dataset, report


def with_image_cache(config, tables, available=None):
    """`config`, with cache_images off when the tables' cached images would not fit in `cache_budget`.

    The estimate is made before any image is read, from the number of images and `image_size`
    (`dataset.pipeline.cache_bytes`), against the memory available now; a cache that would not fit
    is turned off with one line, and the images are read from disk every epoch.

    Args:
        config: Config. Reads cache_images, cache_budget and image_size.
        tables: list of LabelTable or None. The splits whose datasets cache (training and validation).
        available: int or None. Bytes available; None reads the machine's (`utils.memory`).
    """
    if not config.cache_images:
        return config
    tables = [table for table in tables if table is not None]
    images = sum(len(table) for table in tables)
    needed = sum(cache_bytes(len(table), config.image_size, table.labels.shape[1]) for table in tables)
    available = available_memory() if available is None else available
    if available is None or needed <= config.cache_budget * available:
        return config
    print(f"note: the image cache would take {needed / GIB:.1f} GiB ({images} images at {config.image_size} px), "
          f"more than cache_budget={config.cache_budget} of the {available / GIB:.1f} GiB available; reading the "
          "images from disk every epoch instead (set cache_images=False to say so yourself)")
    return dataclasses.replace(config, cache_images=False)
