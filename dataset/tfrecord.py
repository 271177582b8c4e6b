"""Sharded TFRecord files of (encoded image, label vector, path), and the reader for them.

Each record is a `tf.train.Example` with

    image/encoded  bytes      the image file as stored (or re-encoded JPEG when resized)
    image/labels   int64 [C]  label values 1 / 0 / -1 (or class indices for a groups head)
    image/path     bytes      the image path as written in the label file

Images are assigned to shards round-robin, so a label file sorted by class still spreads every
class over all shards and shuffling shards plus a small buffer mixes the data. Beside the shards,
`<prefix>.json` and `<prefix>.txt` record the class names and the count per shard and class.
"""

import concurrent.futures
import io
import json
import math
import os
import re

import numpy as np
import tensorflow as tf
from PIL import Image
from tqdm import tqdm

from utils.atomic import atomic_path, write_text

TARGET_SHARD_BYTES = 150 * 2**20  # 100-200 MB per shard reads at full speed from disks and buckets
JPEG_QUALITY = 95  # for resized images only; the others keep their original bytes


def write_tfrecords(table, out_dir, num_shards=None, resize=None, workers=None, prefix="data"):
    """Writes a label table as TFRecord shards, each atomically, in parallel threads.

    Shards named `<prefix>-NNNNN-of-MMMMM.tfrecord` left in `out_dir` by an earlier run with
    another shard count are removed, so a glob never mixes two runs.

    Args:
        table: LabelTable. Images and labels (from `read_labels`).
        out_dir: str. Output folder (created if needed).
        num_shards: int or None. None picks about 150 MB of images per shard.
        resize: int or None. Largest side in pixels: bigger images are shrunk and re-encoded as
            JPEG (quality 95); smaller ones are kept as they are. None keeps every file as is.
        workers: int or None. Threads, one shard at a time each; None is Python's default.
        prefix: str. Start of the shard and sidecar file names.

    Returns:
        list[str]. The shard paths, in order.
    """
    if not len(table):
        raise ValueError(f"{table.source}: no images to write")
    if resize is not None and resize < 1:
        raise ValueError(f"resize must be a positive number of pixels or None. Received: resize={resize!r}")
    if num_shards is None:
        total = sum(_file_size(table, i) for i in range(len(table)))
        num_shards = math.ceil(total / TARGET_SHARD_BYTES)
    num_shards = max(1, min(int(num_shards), len(table)))
    paths = [os.path.join(out_dir, f"{prefix}-{s:05d}-of-{num_shards:05d}.tfrecord") for s in range(num_shards)]
    os.makedirs(out_dir, exist_ok=True)
    with tqdm(total=len(table), desc="writing TFRecords", unit="img", mininterval=0.5) as progress, \
            concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        jobs = [pool.submit(_write_shard, path, table, range(s, len(table), num_shards), resize, progress)
                for s, path in enumerate(paths)]
        try:
            sizes = [job.result() for job in jobs]
        except BaseException:
            pool.shutdown(cancel_futures=True)  # one bad image: stop, don't write the other shards
            raise
    _remove_stale_shards(out_dir, prefix, paths)
    _write_sidecar(out_dir, prefix, table, paths, sizes, resize)
    return paths


def tfrecord_dataset(file_pattern_or_list, num_classes, shuffle_files=False, seed=None):
    """Reads shards written by `write_tfrecords`.

    A `DataLossError` while iterating means a damaged shard; TF does not say which, so
    `verify_tfrecords` reads them one by one and names it.

    Args:
        file_pattern_or_list: str or list[str]. A glob pattern or the shard paths.
        num_classes: int. Length of the label vector.
        shuffle_files: bool. Shuffle the shard order (once with a seed, else each iteration) and interleave shards
            non-deterministically for speed, unless a seed is given.
        seed: int or None. Seed for the shard order; with a seed the result is reproducible.

    Returns:
        tf.data.Dataset. Elements `(encoded, labels, path)`: tf.string scalar, int32 [C],
        tf.string scalar.
    """
    files = _shard_list(file_pattern_or_list)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if shuffle_files:
        # One shard order per seed: the training stream reshuffles the images of every epoch from
        # (seed, epoch) itself, and an order that changed per iteration would not repeat on resume.
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=seed is None)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset, cycle_length=min(len(files), 16), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not shuffle_files or seed is not None)
    features = _feature_spec(num_classes)

    def parse(record):
        example = tf.io.parse_single_example(record, features)
        return example["image/encoded"], tf.cast(example["image/labels"], tf.int32), example["image/path"]

    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def tfrecord_source(table, tfrecord_dir="", seed=None, shuffle_files=True):
    """Returns a dataset of (encoded bytes, labels, name) read from TFRecord shards of `table`.

    The shards live in `<label file>.tfrecords/` (or `tfrecord_dir/<label file name>/`); they are
    written on first use and again whenever the label file is newer than them, so editing the
    labels never trains on stale records.

    Args:
        table: LabelTable. A split read from its label file (`table.source`).
        tfrecord_dir: str. Folder of the shard folders; "": beside each label file.
        seed: int or None. Seed of the shard order (see `tfrecord_dataset`).
        shuffle_files: bool. Read the shards in a seeded order (training); False: in file order.
    """
    stem = os.path.splitext(os.path.basename(table.source))[0]
    folder = os.path.join(tfrecord_dir, stem) if tfrecord_dir else os.path.splitext(table.source)[0] + ".tfrecords"
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
    return tfrecord_dataset(shards, len(table.class_names), shuffle_files=shuffle_files, seed=seed)


def verify_tfrecords(file_pattern_or_list, num_classes):
    """Reads every shard on its own and raises naming the first damaged one.

    Args:
        file_pattern_or_list: str or list[str]. A glob pattern or the shard paths.
        num_classes: int. Length of the label vector.

    Returns:
        dict[str, int]. Records per shard.
    """
    features = _feature_spec(num_classes)
    counts = {}
    for path in _shard_list(file_pattern_or_list):
        count = 0
        try:
            for record in tf.data.TFRecordDataset(path):
                tf.io.parse_single_example(record, features)
                count += 1
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
            raise ValueError(f"{path}: record {count} is damaged ({type(e).__name__}: {e.message.strip()})") from None
        counts[path] = count
    return counts


def _feature_spec(num_classes):
    return {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/labels": tf.io.FixedLenFeature([num_classes], tf.int64),
        "image/path": tf.io.FixedLenFeature([], tf.string),
    }


def _shard_list(file_pattern_or_list):
    if isinstance(file_pattern_or_list, (str, os.PathLike)):
        files = sorted(tf.io.gfile.glob(str(file_pattern_or_list)))
        if not files:
            raise ValueError(f"no TFRecord files match {str(file_pattern_or_list)!r}")
        return files
    files = [str(f) for f in file_pattern_or_list]
    if not files:
        raise ValueError("the list of TFRecord files is empty")
    return files


def _file_size(table, i):
    try:
        return os.path.getsize(table.images[i])
    except OSError:
        raise ValueError(f"{table.source}:{table.lines[i]}: image not found: {table.images[i]}") from None


def _write_shard(path, table, indices, resize, progress):
    """Writes one shard; returns its example count."""
    with atomic_path(path) as tmp:
        with tf.io.TFRecordWriter(tmp) as writer:
            for i in indices:
                example = tf.train.Example(features=tf.train.Features(feature={
                    "image/encoded": _bytes_feature(_image_bytes(table, i, resize)),
                    "image/labels": tf.train.Feature(int64_list=tf.train.Int64List(value=table.labels[i].tolist())),
                    "image/path": _bytes_feature(table.names[i].encode("utf-8")),
                }))
                writer.write(example.SerializeToString())
                progress.update(1)
    return len(indices)


def _bytes_feature(data):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))


def _image_bytes(table, i, resize):
    try:
        with open(table.images[i], "rb") as f:
            data = f.read()
    except OSError as e:
        raise ValueError(f"{table.source}:{table.lines[i]}: cannot read image {table.images[i]} ({e})") from None
    if resize is None:
        return data
    try:
        return _shrink(data, resize)
    except Exception as e:  # noqa: BLE001  any decoder error: name the row, suggest the checker
        raise ValueError(f"{table.source}:{table.lines[i]}: cannot decode image {table.images[i]} ({e}); "
                         "run python -m dataset.check first") from None


def _shrink(data, max_side):
    """JPEG bytes with the largest side `max_side`, or `data` unchanged when already small enough."""
    with Image.open(io.BytesIO(data)) as image:
        if max(image.size) <= max_side:
            return data
        if image.mode.startswith("I"):
            # 16-bit grey: scale to 8 bits as tf.io.decode_image does; convert("RGB") would clip.
            image = Image.fromarray(np.clip(np.asarray(image, np.float64) / 257.0, 0, 255).round().astype(np.uint8))
        # EXIF orientation is not applied: tf.io.decode_image ignores it too, so resized and
        # original images come out the same way up.
        image = image.convert("RGB")
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        out = io.BytesIO()
        image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0).save(out, "JPEG", quality=JPEG_QUALITY)
        return out.getvalue()


def _remove_stale_shards(out_dir, prefix, keep):
    pattern = re.compile(re.escape(prefix) + r"-\d{5}-of-\d{5}\.tfrecord")
    keep = {os.path.basename(p) for p in keep}
    for name in os.listdir(out_dir):
        if pattern.fullmatch(name) and name not in keep:
            print(f"removing {os.path.join(out_dir, name)} (shard of an earlier run)")
            os.remove(os.path.join(out_dir, name))


def _write_sidecar(out_dir, prefix, table, paths, sizes, resize):
    positives = (table.labels == 1).sum(axis=0)
    info = {
        "source": table.source,
        "class_names": table.class_names,
        "num_classes": len(table.class_names),
        "num_examples": len(table),
        "positives": {name: int(n) for name, n in zip(table.class_names, positives)},
        "resize": resize,
        "features": {"image/encoded": "bytes", "image/labels": "int64 [num_classes]", "image/path": "bytes"},
        "shards": [{"file": os.path.basename(p), "examples": n, "bytes": os.path.getsize(p)}
                   for p, n in zip(paths, sizes)],
    }
    write_text(os.path.join(out_dir, f"{prefix}.json"), json.dumps(info, indent=1) + "\n")
    lines = [f"{len(table)} examples in {len(paths)} shards from {table.source}", "class\tpositives"]
    lines += [f"{name}\t{int(n)}" for name, n in zip(table.class_names, positives)]
    write_text(os.path.join(out_dir, f"{prefix}.txt"), "\n".join(lines) + "\n")
