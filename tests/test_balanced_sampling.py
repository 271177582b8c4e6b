"""Class-balanced sampling (dataset/sampling.py) in NumPy, and the balanced stage's epochs of the tf.data pipeline."""

import numpy as np
import pytest
import tensorflow as tf

from dataset.pipeline import PipelineSettings, training_epochs
from dataset.sampling import class_balanced_probabilities, rarest_positive_class, sample_balanced_indices

LABELS = np.array([
    [1, 0, 0],   # rarest positive: class 0 (4 positives)
    [1, 1, 0],   # class 1 (2 positives) is rarer than class 0
    [1, 0, -1],  # -1 is not a positive
    [0, 1, 1],   # class 2 (1 positive)
    [1, -1, 0],
    [0, 0, 0],   # no positive: its own group (2 such images)
    [-1, 0, -1],
])


def test_rarest_positive_class_counts_known_positives_only():
    rarest, count = rarest_positive_class(LABELS)
    assert rarest.tolist() == [0, 1, 0, 2, 0, -1, -1]
    assert count.tolist() == [4, 2, 4, 1, 4, 2, 2]
    with pytest.raises(ValueError, match="2-D"):
        rarest_positive_class(np.zeros((3, 0)))


def test_probabilities_are_the_inverse_frequency_of_the_rarest_class():
    # transcription: p_i = (1 / n of its rarest class) / sum over images
    inverse = np.array([1 / 4, 1 / 2, 1 / 4, 1 / 1, 1 / 4, 1 / 2, 1 / 2])
    np.testing.assert_allclose(class_balanced_probabilities(LABELS), inverse / inverse.sum(), rtol=1e-12)


def test_single_label_data_draws_every_class_equally_often():
    classes = np.repeat(np.arange(4), [50, 25, 15, 10])
    labels = np.eye(4, dtype=int)[classes]
    p = class_balanced_probabilities(labels)
    np.testing.assert_allclose([p[classes == c].sum() for c in range(4)], 0.25, rtol=1e-12)
    within = p[classes == 0]
    assert np.allclose(within, within[0])  # uniform within a class


def test_sample_balanced_indices_draws_with_replacement_by_the_probabilities():
    p = class_balanced_probabilities(LABELS)
    indices = sample_balanced_indices(p, 70000, rng=0)
    assert indices.dtype == np.int64 and len(indices) == 70000 and set(indices) <= set(range(len(LABELS)))
    np.testing.assert_allclose(np.bincount(indices, minlength=len(LABELS)) / 70000, p, atol=0.005)
    np.testing.assert_array_equal(indices, sample_balanced_indices(p, 70000, rng=0))  # repeatable from the seed


def long_tailed(counts):
    """Single-label labels with these class counts, and a stream whose i-th image's pixels hold i."""
    classes = np.repeat(np.arange(len(counts)), counts)
    labels = np.eye(len(counts), dtype=np.int32)[classes]
    paths = [f"img{i}.png" for i in range(len(labels))]
    pixels = np.broadcast_to(np.arange(len(labels), dtype=np.float32)[:, None, None, None], (len(labels), 4, 4, 3))
    images = tf.data.Dataset.from_tensor_slices((pixels, labels, paths))
    return images, paths, labels


def epoch_rows(dataset):
    """The image rows (from their pixels) and labels of one epoch's batches (`dataset` is that epoch's)."""
    rows, labels = [], []
    for images, y in dataset:
        rows.append(np.round(images.numpy()[:, 0, 0, 0]).astype(int))
        labels.append(y.numpy())
    return np.concatenate(rows), np.concatenate(labels)


def test_the_stage_epochs_draw_class_balanced_batches():
    images, paths, labels = long_tailed([80, 40, 20, 10, 10])  # 160 images, 8:1
    settings = PipelineSettings(image_size=4, batch_size=16, shuffle_buffer=256, epochs=1, balanced_epochs=2)
    before = training_epochs(images, paths, labels, settings, 16, first_epoch=0, steps_per_epoch=10).take(10)
    rows, y = epoch_rows(before)
    assert sorted(rows.tolist()) == list(range(160))  # the first stage: every image once
    assert y.sum(0).tolist() == [80, 40, 20, 10, 10]

    stage = training_epochs(images, paths, labels, settings, 16, first_epoch=1, steps_per_epoch=10)
    rows, y = epoch_rows(stage.take(10))
    np.testing.assert_array_equal(y, labels[rows])  # each image keeps its labels
    counts = y.sum(0)
    assert counts.sum() == 160  # as many images as the first stage's epoch: the same steps
    assert counts.min() >= 16 and counts.max() <= 48, counts  # 32 expected per class (8:1 before)
    assert len(set(rows.tolist())) < 160  # drawn with replacement: rare images repeat, others are left out
    again, _ = epoch_rows(training_epochs(images, paths, labels, settings, 16, first_epoch=1,
                                          steps_per_epoch=10).take(10))
    np.testing.assert_array_equal(rows, again)  # a function of (seed, epoch): a resumed run draws the same
    rows_next, _ = epoch_rows(stage.skip(10).take(10))
    assert not np.array_equal(np.sort(rows), np.sort(rows_next))  # each stage epoch draws anew


def test_without_a_stage_every_epoch_is_as_before():
    images, paths, labels = long_tailed([12, 4])
    settings = PipelineSettings(image_size=4, batch_size=4, shuffle_buffer=64, epochs=1, balanced_epochs=0)
    rows, _ = epoch_rows(training_epochs(images, paths, labels, settings, 4, first_epoch=5, steps_per_epoch=4).take(4))
    assert sorted(rows.tolist()) == list(range(16))
