import math

import numpy as np
import pytest

from dataset.sampling import positive_class_frequency, repeat_factors, sample_epoch_indices

LABELS = np.array([
    [1, 0, 0],
    [1, 1, 0],
    [1, 0, -1],
    [0, 0, 1],
    [0, 0, 0],
])


def test_positive_class_frequency_ignores_unknown():
    # class 2: one positive among the 4 images where it is known.
    np.testing.assert_allclose(positive_class_frequency(LABELS), [3 / 5, 1 / 5, 1 / 4])


def test_repeat_factors_by_hand():
    # t = 0.5: r_0 = max(1, sqrt(0.5 / 0.6)) = 1, r_1 = sqrt(2.5), r_2 = sqrt(2).
    factors = repeat_factors(LABELS, threshold=0.5)
    np.testing.assert_allclose(factors, [1.0, math.sqrt(2.5), 1.0, math.sqrt(2.0), 1.0])
    # Image 2's class 2 is unknown, not present; image 4 has no positives: both stay at 1.
    np.testing.assert_allclose(repeat_factors(LABELS, threshold=1e-3), np.ones(5))
    with pytest.raises(ValueError, match="threshold"):
        repeat_factors(LABELS, threshold=0)


def test_class_without_positives_gives_no_nan():
    labels = np.array([[1, 0], [0, 0]])
    np.testing.assert_allclose(repeat_factors(labels, threshold=2.0), [2.0, 1.0])


def test_sample_epoch_indices_stochastic_rounding():
    factors = np.array([1.0, 2.25, 0.0, 3.0])
    epochs = [np.bincount(sample_epoch_indices(factors, seed, shuffle=False), minlength=4) for seed in range(400)]
    copies = np.array(epochs)
    assert set(copies[:, 0]) == {1} and set(copies[:, 2]) == {0} and set(copies[:, 3]) == {3}
    assert set(copies[:, 1]) == {2, 3}
    assert abs(copies[:, 1].mean() - 2.25) < 0.07  # expected copies equal the factor
    grouped = sample_epoch_indices(factors, np.random.default_rng(0), shuffle=False)
    assert list(grouped[:3]) == [0, 1, 1] and list(grouped[-3:]) == [3, 3, 3]


def test_sample_epoch_indices_reproducible_and_shuffled():
    factors = np.full(50, 1.5)
    a = sample_epoch_indices(factors, 7)
    np.testing.assert_array_equal(a, sample_epoch_indices(factors, 7))
    assert not np.all(np.diff(a) >= 0)  # shuffled
    with pytest.raises(ValueError, match="finite"):
        sample_epoch_indices([1.0, -1.0], 0)
