"""Training augmentations beyond crop, flip and colour jitter; each is stateless (repeatable from a seed).

Per-image functions take a float32 image [height, width, 3] with pixel values in [0, 255] and a
seed (int [2]); `mix_batch` takes a batch. `dataset.pipeline.augment` calls them as configured.

Mixed targets (MixUp, CutMix): labels are 1 / 0 / -1 (unknown). A mixed target is
`lam * y_a + (1 - lam) * y_b` where both images know the class, and -1 (unknown, ignored by every
loss) where either does not: an unknown entry has no value to mix, and guessing 0 would teach a
negative that may be wrong. The losses take soft targets in [0, 1].
"""

import math

import tensorflow as tf


def _uniform(seed, shape=(), minval=0.0, maxval=1.0):
    return tf.random.stateless_uniform(shape, seed=seed, minval=minval, maxval=maxval)


def random_rotation(image, degrees, seed):
    """Rotates by a uniform angle in [-degrees, degrees] about the centre; edges are reflected."""
    angle = _uniform(seed, minval=-degrees, maxval=degrees) * (math.pi / 180.0)
    height, width = tf.cast(tf.shape(image)[0], tf.float32), tf.cast(tf.shape(image)[1], tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # The projective transform maps each output pixel (x, y) to the input pixel it samples.
    x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
    y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
    transform = tf.stack([cos, -sin, x_offset, sin, cos, y_offset, 0.0, 0.0])[None]
    rotated = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=tf.shape(image)[:2], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="REFLECT")
    return rotated[0]


def random_hue(image, max_delta, seed):
    """Shifts the hue by a uniform fraction of the colour circle in [-max_delta, max_delta]."""
    return tf.image.stateless_random_hue(image / 255.0, max_delta, seed) * 255.0


def gaussian_noise(image, std, seed):
    """Adds N(0, std^2) noise to every pixel value (std in pixel units, 0-255)."""
    noise = tf.random.stateless_normal(tf.shape(image), seed=seed, stddev=std)
    return tf.clip_by_value(image + noise, 0.0, 255.0)


def salt_and_pepper(image, fraction, seed):
    """Sets a `fraction` of the pixels (all three channels) to black or white, half each."""
    draw = _uniform(seed, tf.shape(image)[:2])[..., None]
    image = tf.where(draw < fraction / 2.0, 0.0, image)
    return tf.where(draw > 1.0 - fraction / 2.0, 255.0, image)


def random_erasing(image, area, count, seed):
    """Cutout: fills `count` squares, each `area` of the image area, with the image's mean colour.

    A square's centre is uniform over the image, so part of it may fall outside (DeVries & Taylor,
    2017): on average a little less than `area` is erased.
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.sqrt(area * tf.cast(height * width, tf.float32))
    rows = tf.cast(tf.range(height), tf.float32)[:, None]
    cols = tf.cast(tf.range(width), tf.float32)[None, :]
    centres = _uniform(seed, (count, 2)) * tf.cast(tf.stack([height, width]), tf.float32)
    erased = tf.zeros([height, width], tf.bool)
    for i in range(count):
        inside = ((tf.abs(rows + 0.5 - centres[i, 0]) <= side / 2.0)
                  & (tf.abs(cols + 0.5 - centres[i, 1]) <= side / 2.0))
        erased = erased | inside
    mean = tf.reduce_mean(image, axis=[0, 1], keepdims=True)
    return tf.where(erased[..., None], mean, image)


def multiscale_crop(image, scales, seed):
    """Random square crop with side `s * shorter side`, `s` drawn from `scales` (SSGRL's MultiScaleCrop).

    The caller resizes the crop to the input size.
    """
    choice_seed, offset_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    scale = tf.gather(tf.constant(scales, tf.float32),
                      tf.random.stateless_uniform([], choice_seed, 0, len(scales), dtype=tf.int32))
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.maximum(1, tf.cast(scale * tf.cast(tf.minimum(height, width), tf.float32), tf.int32))
    top_left = _uniform(offset_seed, [2]) * tf.cast(tf.stack([height - side + 1, width - side + 1]), tf.float32)
    top_left = tf.cast(tf.floor(top_left), tf.int32)
    return tf.slice(image, tf.concat([top_left, [0]], 0), tf.stack([side, side, 3]))


def sample_beta(alpha, seed):
    """One draw of Beta(alpha, alpha), stateless: X / (X + Y) for X, Y ~ Gamma(alpha)."""
    gammas = tf.random.stateless_gamma([2], seed=seed, alpha=alpha)
    return gammas[0] / (gammas[0] + gammas[1])


def mix_targets(labels_a, labels_b, weight_a):
    """`weight_a * a + (1 - weight_a) * b` where both are known (>= 0); -1 where either is unknown."""
    labels_a, labels_b = tf.cast(labels_a, tf.float32), tf.cast(labels_b, tf.float32)
    known = (labels_a >= 0) & (labels_b >= 0)
    return tf.where(known, weight_a * labels_a + (1.0 - weight_a) * labels_b, -1.0)


def mix_batch(images, labels, seed, mixup_alpha=0.0, cutmix_alpha=0.0):
    """MixUp or CutMix of a batch with itself reversed; one mixing weight per batch.

    With both alphas > 0, each batch uses one of the two, chosen with probability 1/2.

    Args:
        images: float32 [batch, height, width, 3].
        labels: int or float [batch, classes] of 1 / 0 / -1.
        seed: int [2]. Stateless seed of this batch.
        mixup_alpha: float. Beta parameter of MixUp (Zhang 2018); 0: off.
        cutmix_alpha: float. Beta parameter of CutMix (Yun 2019); 0: off.

    Returns:
        (images, labels): labels float32 (see the module docstring for -1).
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    partner_images, partner_labels = tf.reverse(images, [0]), tf.reverse(labels, [0])
    if cutmix_alpha <= 0 and mixup_alpha <= 0:
        return images, tf.cast(labels, tf.float32)

    def mixup():
        lam = sample_beta(mixup_alpha, seeds[0])
        return lam * images + (1.0 - lam) * partner_images, mix_targets(labels, partner_labels, lam)

    def cutmix():
        lam = sample_beta(cutmix_alpha, seeds[1])
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        size = tf.cast(tf.stack([height, width]), tf.float32)
        box = tf.cast(tf.round(size * tf.sqrt(1.0 - lam)), tf.int32)
        centre = tf.cast(_uniform(seeds[2], [2]) * size, tf.int32)
        low = tf.clip_by_value(centre - box // 2, 0, tf.stack([height, width]))
        high = tf.clip_by_value(centre + box - box // 2, 0, tf.stack([height, width]))
        rows, cols = tf.range(height)[:, None], tf.range(width)[None, :]
        pasted = (rows >= low[0]) & (rows < high[0]) & (cols >= low[1]) & (cols < high[1])
        # The label weight is the area actually kept after clipping the box to the image.
        kept = 1.0 - tf.reduce_mean(tf.cast(pasted, tf.float32))
        mixed = tf.where(pasted[None, :, :, None], partner_images, images)
        return mixed, mix_targets(labels, partner_labels, kept)

    if mixup_alpha <= 0:
        return cutmix()
    if cutmix_alpha <= 0:
        return mixup()
    return tf.cond(_uniform(seeds[3]) < 0.5, mixup, cutmix)
