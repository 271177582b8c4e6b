"""RandAugment: each operation against PIL (or its definition), the magnitude scale, seeds, graph mode."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageEnhance, ImageOps

from dataset.pipeline import PipelineSettings, augment
from dataset.randaugment import FILL, LEVELS, OPS, rand_augment

SEED = tf.constant([3, 7], tf.int64)
LEVEL_TOLERANCE = 2.0  # pixel levels: PIL truncates to uint8 at each step, these ops stay in float


def photo(low=40, high=200, height=24, width=32):
    """A uint8 image not spanning the full range, so autocontrast and equalize have work to do."""
    return np.random.default_rng(0).integers(low, high, (height, width, 3)).astype(np.uint8)


def smooth(height=32, width=40):
    """A uint8 image of gradients, where bilinear resampling of PIL and TensorFlow agree closely."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([x * 255 / width, y * 255 / height, (x + y) * 255 / (width + height)], -1).astype(np.uint8)


def apply(name, pixels, level):
    return OPS[name](tf.constant(pixels, tf.float32), level).numpy()


PIL_REFERENCES = {
    "autocontrast": (0.0, ImageOps.autocontrast),
    "equalize": (0.0, ImageOps.equalize),
    "solarize": (128.0, lambda im: ImageOps.solarize(im, 128)),
    "posterize": (3, lambda im: ImageOps.posterize(im, 3)),
    "color": (0.3, lambda im: ImageEnhance.Color(im).enhance(0.3)),
    "contrast": (1.6, lambda im: ImageEnhance.Contrast(im).enhance(1.6)),
    "brightness": (1.4, lambda im: ImageEnhance.Brightness(im).enhance(1.4)),
    "sharpness": (0.2, lambda im: ImageEnhance.Sharpness(im).enhance(0.2)),
}


@pytest.mark.parametrize("name", sorted(PIL_REFERENCES))
def test_pixel_ops_match_pil(name):
    level, reference = PIL_REFERENCES[name]
    pixels = photo()
    expected = np.asarray(reference(Image.fromarray(pixels)), np.float32)
    got = apply(name, pixels, level)
    assert np.abs(got - expected).max() <= LEVEL_TOLERANCE, name
    assert np.abs(got - pixels).mean() > 1.0, name  # the op did something


def test_rotate_matches_pil_inside_the_image():
    pixels = smooth()
    expected = np.asarray(Image.fromarray(pixels).rotate(20, resample=Image.BILINEAR, fillcolor=(128,) * 3), np.float32)
    got = apply("rotate", pixels, 20.0)
    inner = (slice(10, 22), slice(12, 28))  # far from the corners that rotate out of the frame
    assert np.abs(got[inner] - expected[inner]).max() <= LEVEL_TOLERANCE
    assert np.abs(got[inner] - pixels[inner]).mean() > 5.0


def test_shear_moves_each_row_by_shear_times_its_height():
    pixels = smooth()
    got = apply("shear_x", pixels, 0.25)
    for row in (4, 8, 12):  # whole-pixel shifts: exact
        shift = row // 4
        np.testing.assert_allclose(got[row, :-shift], pixels[row, shift:], atol=1e-3)
        np.testing.assert_allclose(got[row, -shift:], FILL, atol=1e-3)  # sampled from outside the image
    got = apply("shear_y", pixels, 0.25)
    np.testing.assert_allclose(got[:-2, 8], pixels[2:, 8], atol=1e-3)


def test_translate_moves_the_content_by_a_fraction_of_the_side():
    pixels = smooth(32, 40)
    got = apply("translate_x", pixels, 0.25)  # 10 pixels left
    np.testing.assert_allclose(got[:, :30], pixels[:, 10:], atol=1e-3)
    np.testing.assert_allclose(got[:, 30:], FILL, atol=1e-3)
    got = apply("translate_y", pixels, -0.25)  # 8 pixels down
    np.testing.assert_allclose(got[8:], pixels[:-8], atol=1e-3)
    np.testing.assert_allclose(got[:8], FILL, atol=1e-3)


def test_levels_follow_the_magnitude_scale():
    at_ten = {name: level(10.0, 1.0) for name, level in LEVELS.items()}
    assert (at_ten["rotate"], at_ten["shear_x"], at_ten["translate_y"]) == (30.0, 0.3, 0.45)
    assert (at_ten["solarize"], at_ten["posterize"], at_ten["color"]) == (0.0, 4, 1.9)
    assert LEVELS["sharpness"](10.0, -1.0) == pytest.approx(0.1)
    assert LEVELS["rotate"](5.0, -1.0) == -15.0 and LEVELS["posterize"](9.0, 1.0) == 5
    assert set(LEVELS) == set(OPS) and len(OPS) == 14  # the paper's list


@pytest.mark.parametrize("name", sorted(set(OPS) - {"autocontrast", "equalize"}))
def test_magnitude_zero_changes_nothing(name):
    pixels = photo().astype(np.float32)
    for sign in (-1.0, 1.0):
        np.testing.assert_allclose(apply(name, pixels, LEVELS[name](0.0, sign)), pixels, atol=1e-3)


def test_repeatable_from_the_seed_and_different_across_seeds():
    image = tf.constant(photo(0, 256, 32, 32), tf.float32)
    first = rand_augment(image, 2, 9.0, SEED).numpy()
    np.testing.assert_array_equal(first, rand_augment(image, 2, 9.0, SEED).numpy())
    others = [rand_augment(image, 2, 9.0, tf.constant([s, 7], tf.int64)).numpy() for s in range(4, 8)]
    assert all(not np.array_equal(first, other) for other in others)
    assert first.shape == (32, 32, 3) and first.dtype == np.float32
    assert min(o.min() for o in [first] + others) >= 0.0 and max(o.max() for o in [first] + others) <= 255.0


def test_runs_in_tf_data_with_static_shape_and_the_eager_result():
    image = tf.constant(photo(0, 256, 32, 32), tf.float32)
    # int64 as Dataset.range gives: a fold-in depends on the dtype of its data
    seeds = [tf.random.experimental.stateless_fold_in(SEED, tf.constant(i, tf.int64)) for i in range(3)]
    dataset = tf.data.Dataset.range(3).map(
        lambda i: rand_augment(image, 3, 9.0, tf.random.experimental.stateless_fold_in(SEED, i)))
    assert dataset.element_spec.shape == (32, 32, 3)
    for got, seed in zip(dataset, seeds):
        np.testing.assert_allclose(got.numpy(), rand_augment(image, 3, 9.0, seed).numpy(), atol=1e-3)


def test_pipeline_augment_applies_it_repeatably():
    image = tf.constant(photo(0, 256, 40, 50), tf.uint8)
    on = PipelineSettings(image_size=32, randaugment_ops=2, randaugment_magnitude=9.0)
    first = augment(image, SEED, on).numpy()
    np.testing.assert_array_equal(first, augment(image, SEED, on).numpy())
    assert first.shape == (32, 32, 3)
    assert not np.array_equal(first, augment(image, SEED, dataclasses.replace(on, randaugment_ops=0)).numpy())
