"""The tf.data pipeline: formats, sizes, broken images skipped and named, repeatable augmentation."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from configs import Config
from dataset.pipeline import DecodeReport, make_dataset


def config(**changes):
    settings = {"image_size": 32, "batch_size": 4, "shuffle_buffer": 16, **changes}
    return dataclasses.replace(Config(), **settings)


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
        ("deep.png", Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)), "PNG"),
    ]:
        image.save(tmp_path / name, format=fmt)
        paths.append(str(tmp_path / name))
    return paths


def test_every_format_decodes_to_rgb(images):
    labels = np.eye(len(images), 3, dtype=np.int32)
    report = DecodeReport(images)
    batches = list(make_dataset(images, labels, config(), training=False, report=report))
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
        ds = make_dataset(paths, labels, config(batch_size=1), training=training, report=report)
        seen = [b for b in ds]
        assert len(seen) == 2
        assert report.skipped() == [str(truncated), str(text)]
    # evaluation keeps labels and names aligned with the images that survive
    eval_batches = list(make_dataset(paths, labels, config(batch_size=4), training=False))
    assert eval_batches[0][1].numpy().tolist() == [[1, 0], [1, 1]]


def test_augmentation_is_repeatable_and_changes_images(images):
    labels = np.zeros((len(images), 2), np.int32)
    cfg = config(color_jitter=0.3, flip="both", batch_size=2)
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
    batches = list(make_dataset(images, labels, config(cache_images=False), training=True))
    assert batches[0][0].shape == (4, 32, 32, 3)
