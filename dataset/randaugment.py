"""RandAugment (Cubuk et al., "RandAugment: Practical automated data augmentation with a reduced
search space", CVPR Workshops 2020), stateless: the draws of an image are a function of its seed.

Keras's `keras.layers.RandAugment` draws from a generator it owns, so it cannot repeat an image's
augmentation from (the `seed` setting, epoch, index) as the rest of `dataset.pipeline.augment` does.

Magnitude convention: `magnitude` is on the paper's 0-10 scale and every operation's strength grows
linearly with it, reaching at 10 the maxima of the paper and torchvision: rotate 30 degrees,
shear 0.3, translate 0.45 of the side (torchvision: 150/331), colour / contrast / brightness /
sharpness factors 1 +- 0.9, solarize threshold 256 - 25.6 m, posterize to 8 - int(0.4 m) bits.
The operations torchvision signs (rotate, shear, translate and the four enhancements) get a random
sign; magnitude 0 leaves an image unchanged except by autocontrast and equalize, which have none.

Each operation takes a float32 image [height, width, 3] with pixel values in [0, 255] and its own
argument (`LEVELS` turns magnitude and sign into that argument); `OPS` names them, so a test can
call one alone.
"""

import math

import tensorflow as tf

FILL = 128.0  # the grey the reference implementation (and timm) fills uncovered pixels with
# PIL's ImageFilter.SMOOTH, the blur that ImageEnhance.Sharpness blends away from.
SMOOTH = [[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]


def identity(image, level):
    return image


def autocontrast(image, level):
    """Stretches each channel linearly: its darkest value becomes 0, its brightest 255 (PIL's autocontrast)."""
    low = tf.reduce_min(image, axis=[0, 1], keepdims=True)
    high = tf.reduce_max(image, axis=[0, 1], keepdims=True)
    stretched = (image - low) * (255.0 / tf.maximum(high - low, 1e-6))
    return tf.where(high > low, stretched, image)  # a flat channel has nothing to stretch


def _equalize_channel(channel):
    """PIL's equalize of one channel of integer levels [H, W]: a look-up table from the cumulative histogram."""
    histogram = tf.math.bincount(channel, minlength=256, maxlength=256)
    # PIL leaves the brightest level's pixels out of the step, so that level maps to 255.
    step = (tf.reduce_sum(histogram) - tf.gather(histogram, tf.reduce_max(channel))) // 255
    table = tf.minimum((tf.cumsum(histogram, exclusive=True) + step // 2) // tf.maximum(step, 1), 255)
    return tf.where(step > 0, tf.gather(table, channel), channel)


def equalize(image, level):
    """Histogram equalisation of each channel (PIL's equalize); values are rounded to levels first."""
    levels = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.int32)
    channels = [_equalize_channel(levels[..., c]) for c in range(3)]
    return tf.cast(tf.stack(channels, axis=-1), tf.float32)


def solarize(image, threshold):
    """Inverts (255 - v) every value at or above `threshold`; 256 changes nothing."""
    return tf.where(image >= threshold, 255.0 - image, image)


def posterize(image, bits):
    """Keeps the `bits` highest bits of each value (PIL's posterize); 8 changes nothing on whole levels."""
    step = tf.pow(2.0, 8.0 - tf.cast(bits, tf.float32))
    return tf.floor(image / step) * step


def _blend(degenerate, image, factor):
    """PIL's ImageEnhance: `degenerate + factor * (image - degenerate)`; factor 1 gives `image`."""
    return tf.clip_by_value(degenerate + factor * (image - degenerate), 0.0, 255.0)


def _grey(image):
    return tf.image.rgb_to_grayscale(image)  # ITU-R 601 luma, as PIL's convert("L")


def color(image, factor):
    """Saturation: 0 gives the grey image, 1 the image, above 1 stronger colours (PIL's ImageEnhance.Color)."""
    return _blend(_grey(image), image, factor)


def contrast(image, factor):
    """Contrast about the mean grey value of the image (PIL's ImageEnhance.Contrast)."""
    return _blend(tf.reduce_mean(_grey(image)), image, factor)


def brightness(image, factor):
    """Brightness: blends with black (PIL's ImageEnhance.Brightness)."""
    return _blend(tf.zeros_like(image), image, factor)


def sharpness(image, factor):
    """Blends with PIL's SMOOTH blur; border pixels stay as they are, as in PIL (ImageEnhance.Sharpness)."""
    kernel = tf.tile(tf.constant(SMOOTH)[:, :, None, None] / 13.0, [1, 1, 3, 1])
    blurred = tf.nn.depthwise_conv2d(image[None], kernel, strides=[1, 1, 1, 1], padding="VALID")[0]
    paddings = [[1, 1], [1, 1], [0, 0]]
    interior = tf.pad(tf.ones_like(blurred[..., :1]), paddings)
    degenerate = interior * tf.pad(blurred, paddings) + (1.0 - interior) * image
    return _blend(degenerate, image, factor)


def _transform(image, matrix):
    """Affine warp: output (x, y) samples input (a x + b y + c, d x + e y + f); `matrix` = [a, b, c, d, e, f]."""
    transform = tf.concat([tf.cast(tf.stack(matrix), tf.float32), tf.zeros([2])], 0)[None]
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=tf.shape(image)[:2], fill_value=FILL,
        interpolation="BILINEAR", fill_mode="CONSTANT")[0]
    warped.set_shape(image.shape)
    return warped


def rotate(image, degrees):
    """Rotates about the centre, counter-clockwise for positive `degrees` (PIL's rotate)."""
    angle = tf.cast(degrees, tf.float32) * (math.pi / 180.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Pixel centres are whole coordinates here, so the centre is ((W - 1) / 2, (H - 1) / 2).
    x = (tf.cast(tf.shape(image)[1], tf.float32) - 1.0) / 2.0
    y = (tf.cast(tf.shape(image)[0], tf.float32) - 1.0) / 2.0
    return _transform(image, [cos, -sin, x - cos * x + sin * y, sin, cos, y - sin * x - cos * y])


def shear_x(image, shear):
    """Output (x, y) samples input (x + shear * y, y): rows slide sideways in proportion to their height."""
    return _transform(image, [1.0, shear, 0.0, 0.0, 1.0, 0.0])


def shear_y(image, shear):
    """Output (x, y) samples input (x, y + shear * x)."""
    return _transform(image, [1.0, 0.0, 0.0, shear, 1.0, 0.0])


def translate_x(image, fraction):
    """Output (x, y) samples input (x + fraction * width, y): the content moves left for a positive fraction."""
    return _transform(image, [1.0, 0.0, fraction * tf.cast(tf.shape(image)[1], tf.float32), 0.0, 1.0, 0.0])


def translate_y(image, fraction):
    """Output (x, y) samples input (x, y + fraction * height): the content moves up for a positive fraction."""
    return _transform(image, [1.0, 0.0, 0.0, 0.0, 1.0, fraction * tf.cast(tf.shape(image)[0], tf.float32)])


# The paper's fourteen operations: name -> op(image, level).
OPS = {
    "identity": identity,
    "autocontrast": autocontrast,
    "equalize": equalize,
    "rotate": rotate,
    "solarize": solarize,
    "color": color,
    "posterize": posterize,
    "contrast": contrast,
    "brightness": brightness,
    "sharpness": sharpness,
    "shear_x": shear_x,
    "shear_y": shear_y,
    "translate_x": translate_x,
    "translate_y": translate_y,
}

# name -> level(magnitude on 0-10, sign +1 or -1): the op's argument (see the module docstring).
LEVELS = {
    "identity": lambda m, sign: 0.0,
    "autocontrast": lambda m, sign: 0.0,
    "equalize": lambda m, sign: 0.0,
    "rotate": lambda m, sign: sign * 30.0 * m / 10.0,
    "solarize": lambda m, sign: 256.0 - 25.6 * m,
    "color": lambda m, sign: 1.0 + sign * 0.9 * m / 10.0,
    "posterize": lambda m, sign: 8 - int(m * 4 / 10),
    "contrast": lambda m, sign: 1.0 + sign * 0.9 * m / 10.0,
    "brightness": lambda m, sign: 1.0 + sign * 0.9 * m / 10.0,
    "sharpness": lambda m, sign: 1.0 + sign * 0.9 * m / 10.0,
    "shear_x": lambda m, sign: sign * 0.3 * m / 10.0,
    "shear_y": lambda m, sign: sign * 0.3 * m / 10.0,
    "translate_x": lambda m, sign: sign * 0.45 * m / 10.0,
    "translate_y": lambda m, sign: sign * 0.45 * m / 10.0,
}


def rand_augment(image, num_ops, magnitude, seed):
    """Applies `num_ops` operations drawn uniformly (with replacement) from `OPS`, each at `magnitude`.

    Args:
        image: float32 [height, width, 3]. Pixel values in [0, 255].
        num_ops: int. Operations applied one after the other (the paper's N).
        magnitude: float. Strength of every operation on the paper's 0-10 scale (the paper's M).
        seed: int [2]. Stateless seed: the same seed gives the same operations, signs and image.

    Returns:
        float32 [height, width, 3] in [0, 255], the static shape of `image`.
    """
    names = list(OPS)
    image = tf.convert_to_tensor(image, tf.float32)
    shape = image.shape
    for op_seed in tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num_ops)):
        choice_seed, sign_seed = tf.unstack(tf.random.experimental.stateless_split(op_seed, 2))
        index = tf.random.stateless_uniform([], choice_seed, minval=0, maxval=len(names), dtype=tf.int32)
        sign = tf.where(tf.random.stateless_uniform([], sign_seed) < 0.5, -1.0, 1.0)
        branches = [lambda name=name, x=image, s=sign: OPS[name](x, LEVELS[name](magnitude, s)) for name in names]
        image = tf.clip_by_value(tf.switch_case(index, branches), 0.0, 255.0)
        image.set_shape(shape)
    return image
