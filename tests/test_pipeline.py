"""The tf.data pipeline: formats, sizes, broken images skipped and named, repeatable augmentation."""

import typing

import keras
import numpy as np
import pytest
from PIL import Image

from configs import Config
from dataset.pipeline import FLIPS, DecodeReport, PipelineSettings, make_dataset
from multi_label.tasks.settings import pipeline_settings


def settings(**changes):
    return PipelineSettings(**{"image_size": 32, "batch_size": 4, "shuffle_buffer": 16, **changes})


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    rgb = (rng.uniform(0, 255, (40, 50, 3))).astype(np.uint8)
    paths = []
    for name, image, fmt in [
        ("rgb.jpg", Image.fromarray(rgb), "JPEG"),
        ("grey.png", Image.fromarray(rgb[..., 0]), "PNG"),
        ("alpha.png", Image.fromarray(np.dstack([rgb, rgb[..., :1]])), "PNG"),
        ("bitmap.bmp", Image.fromarray(rgb), "BMP"),
        ("anim.gif", Image.fromarray(rgb).convert("P"), "GIF"),
        ("deep.png", Image.fromarray(rgb[..., 0].astype(np.uint16) * 257), "PNG"),
    ]:
        image.save(tmp_path / name, format=fmt)
        paths.append(str(tmp_path / name))
    return paths


def test_every_format_decodes_to_rgb(images):
    labels = np.eye(len(images), 3, dtype=np.int32)
    report = DecodeReport(images)
    batches = list(make_dataset(images, labels, settings(), training=False, report=report))
    x = np.concatenate([b[0].numpy() for b in batches])
    paths = [p.decode() for b in batches for p in b[2].numpy()]
    assert x.shape == (len(images), 32, 32, 3) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255 and x.std() > 10
    assert paths == images and report.skipped() == []


def test_broken_images_are_skipped_and_named(images, tmp_path):
    truncated = tmp_path / "truncated.jpg"
    data = (tmp_path / "rgb.jpg").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    paths = [images[0], str(truncated), images[1], str(text)]
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], np.int32)
    for training in (False, True):
        report = DecodeReport(paths)
        ds = make_dataset(paths, labels, settings(batch_size=1), training=training, report=report)
        seen = [b for b in ds]
        assert len(seen) == 2
        assert report.skipped() == [str(truncated), str(text)]
    # evaluation keeps labels and names aligned with the images that survive
    eval_batches = list(make_dataset(paths, labels, settings(batch_size=4), training=False))
    assert eval_batches[0][1].numpy().tolist() == [[1, 0], [1, 1]]


def test_augmentation_is_repeatable_and_changes_images(images):
    labels = np.zeros((len(images), 2), np.int32)
    cfg = settings(color_jitter=0.3, flip="both", batch_size=2)
    first = [b[0].numpy() for b in make_dataset(images, labels, cfg, training=True)]
    second = [b[0].numpy() for b in make_dataset(images, labels, cfg, training=True)]
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    plain = np.concatenate([b[0].numpy() for b in make_dataset(images, labels, cfg, training=False)])
    augmented = np.concatenate(first)
    # no augmented image equals any plain resized one: crops, flips and jitter all took effect
    assert min(np.abs(a - p).mean() for a in augmented for p in plain) > 1.0
    assert len(first) == 3 and first[0].shape == (2, 32, 32, 3)  # drop_remainder keeps batches full


def test_without_cache_same_shapes(images):
    labels = np.zeros((len(images), 2), np.int32)
    batches = list(make_dataset(images, labels, settings(cache_images=False), training=True))
    assert batches[0][0].shape == (4, 32, 32, 3)


def test_training_epochs_are_a_function_of_seed_and_epoch(tmp_path):
    # 10 distinct images (their first pixel says which), batches of 3: 3 batches per epoch.
    paths = []
    for i in range(10):
        path = tmp_path / f"{i}.png"
        pixels = np.full((8, 8, 3), 20 * i, np.uint8)
        pixels[:3, :3] += 30  # a bright corner, so that flips show in the pixels
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    labels = np.zeros((10, 2), np.int32)
    cfg = settings(batch_size=3, image_size=8, flip="both")

    def order(batches):
        return [int(float(b[0].numpy()[k].mean()) // 20) for b in batches for k in range(3)]

    keras.utils.set_random_seed(0)  # a global seed of 0 once broke tf.data's seed check here
    stream = make_dataset(paths, labels, cfg, training=True, steps_per_epoch=3)
    from_zero = order(stream.take(4 * 3))  # epochs 0..3
    keras.utils.set_random_seed(7)  # the order depends on the seed setting and the epoch, not on the global seed
    resumed = order(make_dataset(paths, labels, cfg, training=True, first_epoch=2, steps_per_epoch=3).take(2 * 3))
    assert resumed == from_zero[2 * 9:]  # a stream started at epoch 2 is the uninterrupted run's epochs 2 and 3
    epochs = [from_zero[9 * e:9 * (e + 1)] for e in range(4)]
    assert len({tuple(e) for e in epochs}) == 4  # every epoch has its own order
    assert all(len(set(e)) == 9 for e in epochs)  # an epoch is 9 different images (the 10th is the dropped remainder)
    assert epochs[1] == order(make_dataset(paths, labels, cfg, training=True, first_epoch=1))  # one epoch alone
    # Augmentation draws too: the very pixels of epoch 2 repeat, flips included.
    resumed_stream = make_dataset(paths, labels, cfg, training=True, first_epoch=2, steps_per_epoch=3)
    pixels = [b[0].numpy() for b in resumed_stream.take(3)]
    again = [b[0].numpy() for b in stream.skip(6).take(3)]
    assert all(np.array_equal(a, b) for a, b in zip(pixels, again))
    corners = {tuple(np.argwhere(image[..., 0] == image[..., 0].max())[0]) for batch in pixels for image in batch}
    assert len(corners) > 1  # the flips did happen


def test_training_epochs_are_topped_up_to_steps_per_epoch(tmp_path, images):
    # 6 images of which 0 are broken, batch 4: 1 batch per epoch naturally; asked for 2, the epoch
    # repeats its own start rather than running into the next epoch.
    labels = np.zeros((len(images), 2), np.int32)
    batches = list(make_dataset(images, labels, settings(batch_size=4), training=True, steps_per_epoch=2).take(4))
    assert len(batches) == 4 and all(b[0].shape == (4, 32, 32, 3) for b in batches)


def test_center_crop_at_evaluation_keeps_the_centre(tmp_path):
    # A green centre square in a red frame: the central half of each side is all green.
    pixels = np.zeros((40, 40, 3), np.uint8)
    pixels[..., 0] = 255
    pixels[10:30, 10:30] = [0, 255, 0]
    Image.fromarray(pixels).save(tmp_path / "framed.png")
    paths, labels = [str(tmp_path / "framed.png")], np.zeros((1, 2), np.int32)
    for cache in (True, False):  # the cache resizes early: the crop must come before it
        cropped = next(iter(make_dataset(paths, labels, settings(center_crop=0.5, cache_images=cache), training=False)))
        np.testing.assert_allclose(cropped[0].numpy()[0], np.broadcast_to([0, 255, 0], (32, 32, 3)), atol=1e-3)
    whole = next(iter(make_dataset(paths, labels, settings(), training=False)))[0].numpy()[0]
    assert whole[0, 0, 0] > 250  # without the crop the red frame is there


def test_settings_defaults_are_the_configs():
    assert PipelineSettings() == pipeline_settings(Config())


def test_every_flip_choice_has_its_flips():
    flip_choices = typing.get_args(typing.get_type_hints(Config)["flip"])
    assert sorted(FLIPS) == sorted(flip_choices)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_a_resize_to_the_same_size_is_only_a_cast(dtype):
    # The shortcut in `resize` relies on TensorFlow's antialiased bilinear resize returning the very
    # same pixels at the same size; a TensorFlow that did otherwise would change cached training images.
    import tensorflow as tf

    from dataset.pipeline import resize

    image = np.random.default_rng(0).uniform(0, 255, (24, 24, 3)).astype(dtype)
    resampled = tf.image.resize(image, [24, 24], method="bilinear", antialias=True)
    np.testing.assert_array_equal(resampled.numpy(), image.astype(np.float32))
    shortcut = resize(tf.constant(image), 24)
    assert shortcut.dtype == tf.float32 and shortcut.shape == (24, 24, 3)
    np.testing.assert_array_equal(shortcut.numpy(), image.astype(np.float32))
    assert resize(tf.constant(image), 12).shape == (12, 12, 3)  # another size still resamples


def test_cached_and_streamed_evaluation_give_the_same_whole_pixels(images):
    # the cache keeps uint8 (a quarter of float32); the streamed path rounds its resize the same way
    labels = np.zeros((len(images), 3), np.int32)
    cached = next(iter(make_dataset(images, labels, settings(batch_size=6), training=False)))[0].numpy()
    streamed = next(iter(make_dataset(images, labels, settings(batch_size=6, cache_images=False),
                                      training=False)))[0].numpy()
    np.testing.assert_array_equal(cached, streamed)
    assert np.array_equal(cached, np.round(cached)) and cached.dtype == np.float32 and cached.max() <= 255


def test_the_cache_holds_uint8_images_of_the_estimated_size(images):
    import tensorflow as tf

    from dataset.pipeline import _decoder, cache_bytes

    decode = _decoder(settings(), 1.0, None)
    data = tf.io.read_file(images[0])  # 40 x 50 pixels, resized to 32 x 32 for the cache
    image, _, _ = decode(data, tf.zeros([3], tf.int32), tf.constant(images[0]))
    assert image.dtype == tf.uint8 and image.shape == (32, 32, 3)
    assert cache_bytes(1000, 32, 3) == 1000 * (32 * 32 * 3 + 4 * 3 + 200)


def test_a_cache_over_the_budget_streams_and_says_so_in_one_line(tmp_path, capsys):
    from dataset.labels import LabelTable
    from multi_label.tasks.inputs import with_image_cache

    table = LabelTable(images=["a.png"] * 1000, names=["a.png"] * 1000, class_names=["x", "y", "z"],
                       labels=np.zeros((1000, 3), np.int32), lines=list(range(2, 1002)), source="train.csv")
    config = Config(image_size=224, cache_budget=0.5)  # 1000 images of 150,528 bytes: 0.14 GiB
    assert with_image_cache(config, [table, None], available=1 << 30) is config  # fits in half of 1 GiB
    assert capsys.readouterr().out == ""
    streamed = with_image_cache(config, [table, table], available=1 << 28)  # 0.28 GiB needed, 0.125 allowed
    assert streamed.cache_images is False and config.cache_images is True
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and "note: the image cache would take 0.3 GiB (2000 images at 224 px)" in line
    assert "cache_budget=0.5" in line
    assert with_image_cache(Config(cache_images=False), [table], available=1).cache_images is False


def test_available_memory_reads_memavailable(tmp_path):
    from utils.memory import available_memory

    (tmp_path / "meminfo").write_text("MemTotal: 24000000 kB\nMemFree: 1000 kB\nMemAvailable: 20000000 kB\n")
    assert available_memory(str(tmp_path / "meminfo")) == 20000000 * 1024
    assert available_memory(str(tmp_path / "missing")) > 0  # the free pages, where the file is not there
