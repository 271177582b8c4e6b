"""Hiding labels for the partial and single-positive measurements: the shares, the seed, the files."""

import numpy as np
import pytest

from benchmarks import hide_labels
from dataset.labels import read_labels, write_labels_csv

LABELS = np.random.default_rng(0).integers(0, 2, (200, 7))
LABELS[:5] = 0  # five images without a positive
LABELS[5, 0] = -1  # one entry unknown already


def test_hide_share_hides_that_share_of_the_known_entries_only():
    hidden = hide_labels.hide_share(LABELS, 0.5, seed=3)
    known = LABELS != -1
    assert (hidden == -1).sum() - (~known).sum() == round(0.5 * known.sum())
    kept = hidden != -1
    np.testing.assert_array_equal(hidden[kept], LABELS[kept])  # what stays known is unchanged
    np.testing.assert_array_equal(hide_labels.hide_share(LABELS, 0.5, seed=3), hidden)
    assert not np.array_equal(hide_labels.hide_share(LABELS, 0.5, seed=4), hidden)
    with pytest.raises(ValueError, match="share must be in"):
        hide_labels.hide_share(LABELS, 1.0)


def test_single_positive_keeps_one_true_positive_per_image():
    kept = hide_labels.single_positive(LABELS, seed=1)
    assert set(np.unique(kept)) <= {1, -1}
    has_positive = (LABELS == 1).any(axis=1)
    np.testing.assert_array_equal((kept == 1).sum(axis=1), has_positive.astype(int))
    assert (LABELS[kept == 1] == 1).all()
    # Uniform over an image's positives: over many draws every positive of the image is kept sometimes.
    row = int(np.argmax((LABELS == 1).sum(axis=1)))
    seen = {int(np.flatnonzero(hide_labels.single_positive(LABELS[row:row + 1], seed=s)[0] == 1)[0])
            for s in range(60)}
    assert seen == set(np.flatnonzero(LABELS[row] == 1).tolist())


def test_files_are_written_beside_the_input_and_never_over_one(tmp_path, capsys):
    path = tmp_path / "train.csv"
    write_labels_csv(str(path), [f"{i}.png" for i in range(len(LABELS))], list("abcdefg"), LABELS)
    assert hide_labels.main([str(path), "--share", "0.5"]) == 0
    assert hide_labels.main([str(path), "--single-positive"]) == 0
    half = read_labels(str(tmp_path / "train.hidden-50.csv"))
    single = read_labels(str(tmp_path / "train.single-positive.csv"))
    assert half.names == single.names == read_labels(str(path)).names
    assert (single.labels == 1).sum() == (LABELS == 1).any(axis=1).sum()
    before = (tmp_path / "train.hidden-50.csv").read_bytes()
    assert hide_labels.main([str(path), "--share", "0.5", "--seed", "9"]) == 2
    assert "train.hidden-50.csv: already exists" in capsys.readouterr().err
    assert (tmp_path / "train.hidden-50.csv").read_bytes() == before
