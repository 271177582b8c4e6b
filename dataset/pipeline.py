"""The tf.data input pipeline: one code path for train, val, test and predict.

Images come out as float32 pixel values in [0, 255], resized to `image_size`; normalisation
happens inside the model (the backbone's own), so an exported model takes plain pixels.

An image that fails to decode is skipped and counted, never a crash and never a silent zero
image: `DecodeReport` says how many were skipped and which files.
"""

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


class DecodeReport:
    """Counts the images a dataset tried to decode and remembers which ones succeeded.

    The counters are TensorFlow state updated inside the pipeline, so they work in graph mode
    and with parallel decoding; `skipped()` compares them with the label file.
    """

    def __init__(self, paths):
        self.paths = list(paths)
        self.decoded = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=0)

    def mark(self, path):
        return self.decoded.insert(path, tf.constant(1, tf.int64))

    def skipped(self):
        """Returns the paths that have been read but failed to decode, in label-file order."""
        if int(self.decoded.size()) >= len(set(self.paths)):
            return []
        found = self.decoded.lookup(tf.constant(self.paths)).numpy()
        return [p for p, ok in zip(self.paths, found) if not ok]


def decode_image(data):
    """Decodes JPEG, PNG, BMP or GIF bytes to uint8 RGB [height, width, 3]; grey and alpha become RGB."""
    # expand_animations=False: a GIF gives its first frame instead of a 4-D tensor.
    image = tf.io.decode_image(data, channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, 3])
    return image


def resize(image, size):
    # antialias: downscaling photos without it aliases fine textures into noise.
    return tf.image.resize(image, [size, size], method="bilinear", antialias=True)


def make_dataset(paths, labels, config, training, batch_size=None, report=None, encoded=None):
    """Builds a batched dataset of (images, labels) or, for evaluation, (images, labels, paths).

    Args:
        paths: list[str]. Image files (used as names when `encoded` is given).
        labels: np.ndarray. [N, C] label values (int).
        config: Config. Reads image_size, cache_images, shuffle_buffer, seed, augmentation settings.
        training: bool. Shuffle, augment, drop the last partial batch, and yield (images, labels).
        batch_size: int or None. Default config.batch_size.
        report: DecodeReport or None. Records decode failures.
        encoded: tf.data.Dataset or None. Yields (bytes, labels, path) instead of reading files
            (TFRecords).
    """
    batch_size = batch_size or config.batch_size
    size = config.image_size
    if encoded is None:
        ds = tf.data.Dataset.from_tensor_slices((np.asarray(paths, dtype=object).astype(str), labels.astype(np.int32)))
        ds = ds.map(lambda p, y: (tf.io.read_file(p), y, p), num_parallel_calls=AUTOTUNE,
                    deterministic=True)
    else:
        ds = encoded

    def decode(data, y, path):
        image = decode_image(data)
        if config.cache_images:
            image = resize(image, size)  # cache small images, not full-size photos
        if report is not None:
            # The mark must wait for the decode: a path is marked only once its image exists.
            with tf.control_dependencies([image]):
                marked = report.mark(path)
            with tf.control_dependencies([marked]):
                image = tf.identity(image)
        return image, y, path

    deterministic = bool(getattr(config, "deterministic", False))
    ds = ds.map(decode, num_parallel_calls=1 if deterministic else AUTOTUNE, deterministic=True)
    ds = ds.ignore_errors()  # a broken image is dropped here; `report` knows which one
    if config.cache_images:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
        seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda item, seed: (augment(item[0], seed, config), item[1]),
            num_parallel_calls=1 if deterministic else AUTOTUNE, deterministic=True)
        ds = ds.batch(batch_size, drop_remainder=True)
    else:
        ds = ds.map(lambda image, y, path: (tf.cast(resize(image, size), tf.float32), y, path),
                    num_parallel_calls=AUTOTUNE, deterministic=True)
        ds = ds.batch(batch_size)
    return ds.prefetch(AUTOTUNE)


def augment(image, seed, config):
    """Random resized crop, flips and colour jitter, all stateless (repeatable from `seed`)."""
    size = config.image_size
    image = tf.cast(image, tf.float32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=6)
    if config.crop_scale is not None:
        begin, crop, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image), tf.zeros([1, 0, 4]), seed=seeds[0], area_range=config.crop_scale,
            aspect_ratio_range=config.crop_ratio, min_object_covered=0.0, use_image_if_no_bounding_boxes=True,
            max_attempts=20)
        image = tf.slice(image, begin, crop)
    image = resize(image, size)
    if config.flip in ("horizontal", "both"):
        image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    if config.flip in ("vertical", "both"):
        image = tf.image.stateless_random_flip_up_down(image, seeds[2])
    if config.color_jitter > 0:
        s = config.color_jitter
        image = tf.image.stateless_random_brightness(image, 255.0 * s, seeds[3])
        image = tf.image.stateless_random_contrast(image, 1 - s, 1 + s, seeds[4])
        image = tf.image.stateless_random_saturation(image, 1 - s, 1 + s, seeds[5])
        image = tf.clip_by_value(image, 0.0, 255.0)
    return image
