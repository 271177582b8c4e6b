"""The tf.data input pipeline: one code path for train, val, test and predict.

Images come out as float32 pixel values in [0, 255], resized to `image_size`; normalisation
happens inside the model (the backbone's own), so an exported model takes plain pixels.

An image that fails to decode is skipped and counted, never a crash and never a silent zero
image: `DecodeReport` says how many were skipped and which files.
"""


import dataclasses
from typing import Optional

import numpy as np
import tensorflow as tf

from dataset import augment as extra
from dataset.randaugment import rand_augment
from dataset.sampled_stream import balanced_counts, factor_copies, repeat_by_factor, repeat_images
from dataset.sampling import class_balanced_probabilities, repeat_factors
from utils.defaults import DEFAULTS

AUTOTUNE = tf.data.AUTOTUNE
# flip -> (random left-right flip, random up-down flip)
FLIPS = {"none": (False, False), "horizontal": (True, False), "vertical": (False, True), "both": (True, True)}


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    """What `make_dataset`, `training_epochs` and `augment` read; names and defaults are configs.py's.

    A task builds it with `multi_label.tasks.settings.pipeline_settings(config)`; the meaning of each
    setting is documented there.
    """

    image_size: int = DEFAULTS.image_size
    batch_size: int = DEFAULTS.batch_size
    cache_images: bool = DEFAULTS.cache_images
    shuffle_buffer: int = DEFAULTS.shuffle_buffer
    seed: int = DEFAULTS.seed
    deterministic: bool = DEFAULTS.deterministic
    center_crop: float = DEFAULTS.center_crop
    repeat_factor_threshold: float = DEFAULTS.repeat_factor_threshold
    epochs: int = DEFAULTS.epochs
    balanced_epochs: int = DEFAULTS.balanced_epochs
    mixup_alpha: float = DEFAULTS.mixup_alpha
    cutmix_alpha: float = DEFAULTS.cutmix_alpha
    flip: str = DEFAULTS.flip
    crop_scale: Optional[tuple] = DEFAULTS.crop_scale
    crop_ratio: tuple = DEFAULTS.crop_ratio
    multiscale_crop: Optional[tuple] = DEFAULTS.multiscale_crop
    randaugment_ops: int = DEFAULTS.randaugment_ops
    randaugment_magnitude: float = DEFAULTS.randaugment_magnitude
    rotation: float = DEFAULTS.rotation
    color_jitter: float = DEFAULTS.color_jitter
    hue_jitter: float = DEFAULTS.hue_jitter
    gaussian_noise: float = DEFAULTS.gaussian_noise
    salt_and_pepper: float = DEFAULTS.salt_and_pepper
    cutout: float = DEFAULTS.cutout
    cutout_count: int = DEFAULTS.cutout_count


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
    """`image` [..., H, W, 3] as float32 [..., size, size, 3], bilinear with antialiasing.

    antialias: downscaling photos without it aliases fine textures into noise. An image whose
    static shape is already `size` square is only cast: TensorFlow's resize at the same size
    computes the whole resampling to return the very same pixels (tests/test_pipeline.py), and
    training ran it on every image of every epoch, the cache holding images resized already.
    """
    if tuple(image.shape[-3:-1]) == (size, size):
        return tf.cast(image, tf.float32)
    return tf.image.resize(image, [size, size], method="bilinear", antialias=True)


def cache_bytes(images, image_size, classes):
    """Bytes the decoded-image cache of `images` images takes: uint8 pixels, int32 labels and the path.

    tf.data's in-memory cache holds each element's tensors as they are; 200 bytes an element stand
    for the path string and the tensors' own bookkeeping.
    """
    return images * (image_size * image_size * 3 + 4 * classes + 200)


def whole_pixels(image):
    """`image` rounded to uint8 pixel values: what the cache keeps; a uint8 image is returned as it is."""
    if image.dtype == tf.uint8:
        return image
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def center_crop(image, fraction):
    """Keeps the central `fraction` of each side of an image [H, W, C] or a batch [N, H, W, C]; 1.0: all.

    Evaluation's crop (the `center_crop` setting) before the resize; the exported SavedModel calls this too,
    so that its inputs match the pipeline's.
    """
    if fraction >= 1.0:
        return image
    return tf.image.central_crop(image, fraction)


def make_dataset(paths, labels, settings, training, batch_size=None, report=None, encoded=None, first_epoch=0,
                 steps_per_epoch=None):
    """Builds a batched dataset of (images, labels) or, for evaluation, (images, labels, paths).

    Args:
        paths: list[str]. Image files (used as names when `encoded` is given).
        labels: np.ndarray. [N, C] label values (int).
        settings: PipelineSettings. Image size, caching, shuffling, seed, augmentation settings.
        training: bool. Shuffle, augment, drop the last partial batch, and yield (images, labels).
        batch_size: int or None. Default settings.batch_size.
        report: DecodeReport or None. Records decode failures.
        encoded: tf.data.Dataset or None. Yields (bytes, labels, path) instead of reading files
            (TFRecords).
        first_epoch: int. Training: the epoch the batches start at (a resumed run's finished epochs).
        steps_per_epoch: int or None. Training: with a number, an endless stream of epochs of
            exactly that many batches each (`model.fit(steps_per_epoch=...)`); without, the one
            epoch `first_epoch`.

    A training epoch's order and random draws are a function of (`seed`, epoch number) only
    (`training_epochs`), so a run resumed in a new process sees the very batches it would have.
    """
    batch_size = batch_size or settings.batch_size
    if encoded is None:
        ds = tf.data.Dataset.from_tensor_slices((np.asarray(paths, dtype=object).astype(str), labels.astype(np.int32)))
        ds = ds.map(lambda p, y: (tf.io.read_file(p), y, p), num_parallel_calls=AUTOTUNE,
                    deterministic=True)
    else:
        ds = encoded
    decode = _decoder(settings, 1.0 if training else settings.center_crop, report)
    ds = ds.map(decode, num_parallel_calls=1 if settings.deterministic else AUTOTUNE, deterministic=True)
    ds = ds.ignore_errors()  # a broken image is dropped here; `report` knows which one
    if settings.cache_images:
        ds = ds.cache()
    if training:
        ds = training_epochs(ds, paths, labels, settings, batch_size, first_epoch, steps_per_epoch)
    else:
        ds = ds.map(lambda image, y, path: (tf.cast(whole_pixels(resize(image, settings.image_size)), tf.float32), y,
                                            path), num_parallel_calls=AUTOTUNE, deterministic=True)
        ds = ds.batch(batch_size)
    return ds.prefetch(AUTOTUNE)


def _decoder(settings, crop, report):
    """The map function (bytes, labels, path) -> (image, labels, path) of `make_dataset`.

    Args:
        settings: PipelineSettings. Reads cache_images and image_size.
        crop: float. Central fraction of each side kept (`center_crop`); 1.0: all.
        report: DecodeReport or None. Marks each path whose image decoded.
    """

    def decode(data, y, path):
        # Evaluation's crop comes before the cache's resize: a crop of the resized image would lose detail.
        image = center_crop(decode_image(data), crop)
        if settings.cache_images:
            # cache small resized images, not full-size photos, as uint8: a quarter of float32's
            # memory. Evaluation rounds the uncached path's resize the same way (`whole_pixels`), so
            # cached and uncached give the model the very same pixels. An image of the size already
            # (the demo's) is kept as decoded: the same pixels (`resize`), without the cost.
            size = settings.image_size
            image = tf.cond(tf.reduce_all(tf.equal(tf.shape(image)[:2], size)),
                            lambda: image, lambda: whole_pixels(resize(image, size)))
            image.set_shape([size, size, 3])
        if report is not None:
            # The mark must wait for the decode: a path is marked only once its image exists.
            with tf.control_dependencies([image]):
                marked = report.mark(path)
            with tf.control_dependencies([marked]):
                image = tf.identity(image)
        return image, y, path

    return decode


def training_epochs(images, paths, labels, settings, batch_size, first_epoch=0, steps_per_epoch=None):
    """Training batches of epochs `first_epoch`, `first_epoch + 1`, ... (one epoch without `steps_per_epoch`).

    Everything random in an epoch (repeat-factor rounding, the class-balanced draws, the shuffle,
    the augmentation draws, MixUp/CutMix) is drawn from the seed pair (`settings.seed`, epoch).
    tf.data's own reshuffling advances a generator per iteration, which a new process starts again
    from the first epoch: a run resumed at epoch 3 would see epoch 1's order. Here it sees epoch 3's.

    With `steps_per_epoch` each epoch is exactly that many batches (a shorter one, from skipped
    images or repeat-factor rounding, is topped up from its own start), so that Keras's epochs and
    these stay aligned; the stream never ends.

    With `settings.balanced_epochs` > 0, the epochs from `settings.epochs` on (the balanced stage)
    draw their images by class-balanced sampling (`balanced_counts`), as many as the epoch's batches
    hold, instead of the repeat factors.

    Args:
        images: tf.data.Dataset. Yields (image, labels, path), decoded (and cached).
        paths: list[str]. The image paths the labels belong to (repeat factors are looked up by path).
        labels: np.ndarray. [N, C] label values.
        settings: PipelineSettings. Reads seed, shuffle_buffer, repeat_factor_threshold, epochs, balanced_epochs,
            augmentation and mixing settings.
        batch_size: int. Images per batch; the last partial batch of an epoch is dropped.
        first_epoch: int. The first epoch's number.
        steps_per_epoch: int or None. Batches per epoch of an endless stream, or None for one epoch.
    """
    threshold = settings.repeat_factor_threshold
    factors = repeat_factors(labels, threshold) if threshold > 0 else None
    balanced = class_balanced_probabilities(labels) if settings.balanced_epochs > 0 else None
    draws = (steps_per_epoch or 0) * batch_size or len(labels)
    # A buffer of at least a batch reads the cached images to their end within the epoch's batches,
    # so the first epoch completes the cache even when it is cut to `steps_per_epoch`.
    buffer = max(settings.shuffle_buffer, batch_size)

    def one_epoch(epoch):
        # Traced as a tf.data function. tf.data pairs a shuffle's seed with the graph-level seed, which
        # is the global seed (keras.utils.set_random_seed) by default; fixed here, the order depends on
        # (settings.seed, epoch) alone. It also keeps TensorFlow's seed check, which compares a global
        # seed of 0 with the op seed as a Python bool, from failing on this tensor seed.
        tf.compat.v1.get_default_graph().seed = 1
        seed = tf.stack([tf.constant(settings.seed, tf.int64), tf.cast(epoch, tf.int64)])
        split = tf.random.experimental.stateless_split(seed, num=4)
        ds = _sampled(images, paths, epoch, split[0], factors, balanced, draws, settings.epochs)
        shuffle_seed = tf.random.stateless_uniform([], split[1], minval=0, maxval=2**31 - 1, dtype=tf.int64)
        ds = ds.shuffle(buffer, seed=shuffle_seed, reshuffle_each_iteration=False)
        ds = _augmented_batches(ds, settings, batch_size, split[2], split[3])
        if steps_per_epoch:
            ds = ds.repeat().take(steps_per_epoch)
        return ds

    last = first_epoch + 1 if not steps_per_epoch else 2**62
    return tf.data.Dataset.range(first_epoch, last).flat_map(one_epoch)


def _sampled(images, paths, epoch, seed, factors, balanced, draws, stage_start):
    """One epoch's images: each as often as repeat-factor or (from `stage_start` on) class-balanced sampling says.

    Args:
        images: tf.data.Dataset. Yields (image, labels, path), in label-file order.
        paths: list[str]. The image paths the labels belong to.
        epoch: int64 tensor. The epoch's number.
        seed: int64 [2]. The epoch's seed of the draws.
        factors: np.ndarray or None. Repeat factors [N]; None: each image once.
        balanced: np.ndarray or None. Class-balanced probabilities [N] of the balanced stage; None: no stage.
        draws: int. Images of a balanced epoch.
        stage_start: int. The balanced stage's first epoch.
    """
    if balanced is None:
        return images if factors is None else repeat_by_factor(images, paths, factors, seed)
    in_stage = epoch >= stage_start
    before = factor_copies(factors, seed) if factors is not None else lambda index, row: 1
    counts = tf.cond(in_stage, lambda: balanced_counts(balanced, draws, seed), lambda: tf.zeros([len(paths)], tf.int64))
    return repeat_images(images, paths, lambda index, row: tf.where(
        in_stage, tf.gather(counts, tf.maximum(row, 0)), tf.cast(before(index, row), tf.int64)))


def _augmented_batches(ds, settings, batch_size, augment_seed, mix_seed):
    """One epoch's images augmented, batched (the last partial batch dropped) and mixed (MixUp/CutMix).

    Args:
        ds: tf.data.Dataset. Yields (image, labels, path), in the epoch's order.
        settings: PipelineSettings. Reads deterministic, the augmentation settings, mixup_alpha, cutmix_alpha.
        batch_size: int. Images per batch.
        augment_seed: int64 [2]. The i-th image's draws come from this seed folded with i.
        mix_seed: int64 [2]. The i-th batch's mixing draws come from this seed folded with i.
    """
    parallel = 1 if settings.deterministic else AUTOTUNE
    ds = ds.enumerate().map(
        lambda i, item: (augment(item[0], tf.random.experimental.stateless_fold_in(augment_seed, i), settings),
                         item[1]),
        num_parallel_calls=parallel, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True)
    mixup, cutmix = settings.mixup_alpha, settings.cutmix_alpha
    if mixup > 0 or cutmix > 0:
        ds = ds.enumerate().map(
            lambda i, batch: extra.mix_batch(batch[0], batch[1], tf.random.experimental.stateless_fold_in(
                mix_seed, i), mixup, cutmix),
            num_parallel_calls=parallel, deterministic=True)
    return ds


def augment(image, seed, settings):
    """Crops, RandAugment, flips, rotation, colour jitter, noise, erasing as configured; repeatable from `seed`.

    The functions beyond crop, flip and colour jitter are in `dataset.augment` and `dataset.randaugment`.

    Args:
        image: uint8 or float32 [height, width, 3]. Pixel values in [0, 255].
        seed: int [2]. Stateless seed of this image's draws.
        settings: PipelineSettings. Reads image_size and the augmentation settings.

    Returns:
        float32 [image_size, image_size, 3] in [0, 255].
    """
    image = tf.cast(image, tf.float32)
    seed = tf.cast(seed, tf.int64)
    seeds = tf.random.experimental.stateless_split(seed, num=6)
    # Seeds of the later additions come from a second split, so the first six (and the images of
    # runs without the additions) are unchanged.
    more = tf.random.experimental.stateless_split(tf.random.experimental.stateless_fold_in(seed, 1), num=6)
    if settings.crop_scale is not None:
        begin, crop, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image), tf.zeros([1, 0, 4]), seed=seeds[0], area_range=settings.crop_scale,
            aspect_ratio_range=settings.crop_ratio, min_object_covered=0.0, use_image_if_no_bounding_boxes=True,
            max_attempts=20)
        image = tf.slice(image, begin, crop)
    if settings.multiscale_crop is not None:
        image = extra.multiscale_crop(image, settings.multiscale_crop, more[0])
    image = resize(image, settings.image_size)
    if settings.randaugment_ops > 0:
        # A seed of its own (fold-in 2; `more` uses fold-in 1), so the other draws stay as they were.
        image = rand_augment(image, settings.randaugment_ops, settings.randaugment_magnitude,
                             tf.random.experimental.stateless_fold_in(seed, 2))
    if settings.rotation > 0:
        image = extra.random_rotation(image, settings.rotation, more[1])
    left_right, up_down = FLIPS[settings.flip]
    if left_right:
        image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    if up_down:
        image = tf.image.stateless_random_flip_up_down(image, seeds[2])
    return _photometric(image, settings, seeds[3:], more[2:])


def _photometric(image, settings, jitter_seeds, more):
    """`augment`'s colour jitter, hue, noise and erasing, in that order.

    Args:
        image: float32 [height, width, 3]. Pixel values in [0, 255].
        settings: PipelineSettings. Reads color_jitter, hue_jitter, gaussian_noise, salt_and_pepper, cutout,
            cutout_count.
        jitter_seeds: int [3, 2]. Seeds of brightness, contrast and saturation.
        more: int [4, 2]. Seeds of hue, Gaussian noise, salt and pepper, erasing.
    """
    if settings.color_jitter > 0:
        s = settings.color_jitter
        image = tf.image.stateless_random_brightness(image, 255.0 * s, jitter_seeds[0])
        image = tf.image.stateless_random_contrast(image, 1 - s, 1 + s, jitter_seeds[1])
        image = tf.image.stateless_random_saturation(image, 1 - s, 1 + s, jitter_seeds[2])
        image = tf.clip_by_value(image, 0.0, 255.0)
    if settings.hue_jitter > 0:
        image = tf.clip_by_value(extra.random_hue(image, settings.hue_jitter, more[0]), 0.0, 255.0)
    if settings.gaussian_noise > 0:
        image = extra.gaussian_noise(image, settings.gaussian_noise, more[1])
    if settings.salt_and_pepper > 0:
        image = extra.salt_and_pepper(image, settings.salt_and_pepper, more[2])
    if settings.cutout > 0:
        image = extra.random_erasing(image, settings.cutout, settings.cutout_count, more[3])
    return image
