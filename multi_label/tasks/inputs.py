"""The images of a label table for any mode: read from the image files or from TFRecord shards (`data_format`)."""

from dataset.pipeline import DecodeReport, PipelineSettings, make_dataset
from dataset.tfrecord import tfrecord_source
from utils.settings import pick


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
    dataset = make_dataset(names, table.labels, pick(PipelineSettings, config), training, batch_size=batch_size,
                           report=report, encoded=encoded, first_epoch=first_epoch, steps_per_epoch=steps_per_epoch)
    return dataset, report
