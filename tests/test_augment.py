"""dataset.augment and its wiring: shapes, value ranges, repeatability, mixed -1 targets, repeat factors."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from dataset import augment as aug
from dataset.pipeline import PipelineSettings, augment, make_dataset
from dataset.sampling import repeat_factors

SEED = tf.constant([3, 7], tf.int64)
OTHER = tf.constant([4, 7], tf.int64)


def settings(**changes):
    return PipelineSettings(**{"image_size": 32, "batch_size": 4, "shuffle_buffer": 64, **changes})


def image(height=40, width=50):
    rng = np.random.default_rng(0)
    return tf.constant(rng.uniform(0, 255, (height, width, 3)), tf.float32)


PER_IMAGE = {
    "rotation": lambda x, s: aug.random_rotation(x, 30.0, s),
    "hue": lambda x, s: aug.random_hue(x, 0.2, s),
    "gaussian_noise": lambda x, s: aug.gaussian_noise(x, 10.0, s),
    "salt_and_pepper": lambda x, s: aug.salt_and_pepper(x, 0.2, s),
    "cutout": lambda x, s: aug.random_erasing(x, 0.1, 2, s),
}


@pytest.mark.parametrize("name", sorted(PER_IMAGE))
def test_per_image_shape_range_repeatable(name):
    function = PER_IMAGE[name]
    x = image()
    first, again, other = function(x, SEED), function(x, SEED), function(x, OTHER)
    assert first.shape == x.shape and first.dtype == tf.float32
    assert -1e-3 <= float(tf.reduce_min(first)) and float(tf.reduce_max(first)) <= 255.0 + 1e-3
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert not np.array_equal(first.numpy(), other.numpy())
    assert np.abs(first.numpy() - x.numpy()).mean() > 0.5


def test_salt_and_pepper_fraction_and_values():
    x = tf.fill([100, 100, 3], 128.0)
    out = aug.salt_and_pepper(x, 0.1, SEED).numpy()
    changed = (out[..., 0] != 128.0)
    assert abs(changed.mean() - 0.1) < 0.02
    assert set(np.unique(out[changed])) <= {0.0, 255.0}
    assert (out[..., 0] == out[..., 2]).all()  # whole pixels, not single channels


def test_cutout_erases_about_the_area_with_the_mean():
    x = image(64, 64)
    out = aug.random_erasing(x, 0.1, 1, SEED).numpy()
    erased = (out != x.numpy()).any(axis=-1)
    assert 0.02 < erased.mean() <= 0.11
    np.testing.assert_allclose(out[erased][0], x.numpy().mean(axis=(0, 1)), rtol=1e-5)


def test_multiscale_crop_sides_come_from_the_list():
    x = image(40, 60)
    sides = {aug.multiscale_crop(x, (1.0, 0.5), tf.constant([i, 1], tf.int64)).shape[:2] for i in range(20)}
    assert sides == {(40, 40), (20, 20)}


def test_pipeline_augment_with_everything_on_is_repeatable_and_sized():
    cfg = settings(rotation=15.0, hue_jitter=0.1, gaussian_noise=5.0, salt_and_pepper=0.01, cutout=0.1, cutout_count=2,
                 multiscale_crop=(1.0, 0.875, 0.75, 0.66, 0.5), color_jitter=0.2, flip="horizontal")
    x = tf.cast(image(), tf.uint8)
    first, again = augment(x, SEED, cfg).numpy(), augment(x, SEED, cfg).numpy()
    assert first.shape == (32, 32, 3) and 0 <= first.min() and first.max() <= 255
    np.testing.assert_array_equal(first, again)


def test_new_settings_off_leave_augment_unchanged():
    # With every augmentation at its default (off), training images are the plain resized ones.
    x = tf.cast(image(), tf.uint8)
    reference = tf.image.resize(tf.cast(x, tf.float32), [32, 32], antialias=True)
    np.testing.assert_array_equal(augment(x, SEED, settings()).numpy(), reference.numpy())


def test_mix_targets_keep_unknown():
    a = tf.constant([[1, 0, -1, 1, -1]])
    b = tf.constant([[0, 0, 1, 1, -1]])
    np.testing.assert_allclose(aug.mix_targets(a, b, 0.75).numpy(), [[0.75, 0.0, -1.0, 1.0, -1.0]])


@pytest.mark.parametrize("mixup, cutmix", [(0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_mix_batch_images_and_targets(mixup, cutmix):
    rng = np.random.default_rng(1)
    images = tf.constant(rng.uniform(0, 255, (4, 16, 16, 3)), tf.float32)
    labels = tf.constant([[1, 0, -1], [0, 1, 1], [1, 1, 0], [0, -1, 1]], tf.int32)
    mixed, targets = aug.mix_batch(images, labels, SEED, mixup, cutmix)
    again, _ = aug.mix_batch(images, labels, SEED, mixup, cutmix)
    np.testing.assert_array_equal(mixed.numpy(), again.numpy())
    assert mixed.shape == images.shape and targets.dtype == tf.float32
    t, y = targets.numpy(), labels.numpy()
    partner = y[::-1]
    unknown = (y < 0) | (partner < 0)
    assert (t[unknown] == -1).all()
    assert ((t[~unknown] >= 0) & (t[~unknown] <= 1)).all()
    # Every known target lies between the two sources' values, with one weight for the batch.
    weights = {round(float((t[i, j] - partner[i, j]) / (y[i, j] - partner[i, j])), 5)
               for i in range(4) for j in range(3) if not unknown[i, j] and y[i, j] != partner[i, j]}
    assert len(weights) == 1 and 0 <= weights.pop() <= 1
    lo, hi = np.minimum(images, images.numpy()[::-1]), np.maximum(images, images.numpy()[::-1])
    assert (mixed.numpy() >= lo - 1e-3).all() and (mixed.numpy() <= hi + 1e-3).all()


def test_cutmix_weight_is_the_kept_area():
    images = tf.concat([tf.zeros([1, 20, 20, 3]), tf.fill([1, 20, 20, 3], 255.0)], 0)
    labels = tf.constant([[1], [0]])
    mixed, targets = aug.mix_batch(images, labels, SEED, 0.0, 1.0)
    kept = float((mixed.numpy()[0, ..., 0] == 0).mean())
    assert targets.numpy()[0, 0] == pytest.approx(kept, abs=1e-6)


def write_images(tmp_path, n):
    paths = []
    for i in range(n):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((8, 8, 3), i * 20, np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_training_dataset_mixes_batches(tmp_path):
    paths = write_images(tmp_path, 8)
    labels = np.array([[1, 0], [0, -1]] * 4, np.int32)
    cfg = settings(batch_size=4, mixup_alpha=0.4, deterministic=True)
    batches = list(make_dataset(paths, labels, cfg, training=True))
    assert len(batches) == 2 and batches[0][1].dtype == tf.float32
    targets = np.concatenate([b[1].numpy() for b in batches])
    assert (targets[:, 1] == -1).any() and ((targets >= 0) | (targets == -1)).all()


def test_repeat_factor_sampling_counts(tmp_path):
    # Class 1 is in 1 of 10 images: with t=0.4 its image is repeated sqrt(0.4 / 0.1) = 2 times.
    paths = write_images(tmp_path, 10)
    labels = np.zeros((10, 2), np.int32)
    labels[:, 0] = 1
    labels[3, 1] = 1
    factors = repeat_factors(labels, 0.4)
    assert factors[3] == pytest.approx(2.0) and factors[0] == 1.0
    cfg = settings(batch_size=1, repeat_factor_threshold=0.4, deterministic=True)
    ds = make_dataset(paths, labels, cfg, training=True)
    epoch = [int(round(float(b[0].numpy()[0, 0, 0, 0]) / 20)) for b in ds]
    assert sorted(epoch) == sorted(list(range(10)) + [3])
    again = [int(round(float(b[0].numpy()[0, 0, 0, 0]) / 20)) for b in make_dataset(paths, labels, cfg, training=True)]
    assert epoch == again  # repeatable from the seed


def test_repeat_factor_stochastic_rounding_mean(tmp_path):
    # A factor of 1.5: one or two copies per epoch, two in about half of the epochs.
    paths = write_images(tmp_path, 9)
    labels = np.zeros((9, 2), np.int32)
    labels[:, 0] = 1
    labels[0, 1] = 1
    factors = repeat_factors(labels, 0.25)
    assert factors[0] == pytest.approx(1.5)
    cfg = settings(batch_size=1, repeat_factor_threshold=0.25, deterministic=True, shuffle_buffer=1)
    counts = []
    for epoch in range(40):  # every epoch has its own draws
        ds = make_dataset(paths, labels, cfg, training=True, first_epoch=epoch)
        values = [int(round(float(b[0].numpy()[0, 0, 0, 0]) / 20)) for b in ds]
        counts.append(values.count(0))
        assert sorted(set(values)) == list(range(9)) and len(values) == 8 + counts[-1]
    assert set(counts) == {1, 2} and 0.25 < np.mean(np.array(counts) == 2) < 0.75
