import json

import numpy as np
import pytest

from dataset import stats as label_stats
from dataset.cooccurrence import conditional_probability, cooccurrence_counts
from dataset.labels import read_labels, write_labels_csv

# 5 images x 3 classes; class 2 is never present, one unknown in each of classes 0 and 1.
LABELS = np.array([
    [1, 1, 0],
    [1, 0, 0],
    [1, -1, 0],
    [0, 1, -1],
    [-1, 1, 0],
])


def test_cooccurrence_counts_by_hand():
    counts, positives = cooccurrence_counts(LABELS)
    np.testing.assert_array_equal(positives, [3, 3, 0])
    np.testing.assert_array_equal(counts, [[3, 1, 0], [1, 3, 0], [0, 0, 0]])
    assert counts.dtype == np.int64


def test_conditional_probability_by_hand():
    p = conditional_probability(LABELS)
    # P(1 | 0): rows with 0 present and 1 known are 0 and 1 -> 1 of 2 has class 1.
    # P(0 | 1): rows with 1 present and 0 known are 0 and 3 -> 1 of 2 has class 0.
    # P(2 | 0) = 0 / 3; P(2 | 1): rows 0 and 4 (row 3 has 2 unknown) -> 0 / 2.
    expected = [[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.0]]  # class 2: no positives, zero row
    np.testing.assert_allclose(p, expected)
    assert not np.isnan(p).any()
    with pytest.raises(ValueError, match="2-D"):
        conditional_probability(np.zeros(3))


def test_label_statistics_writes_json_and_plots(tmp_path):
    path = tmp_path / "l.csv"
    write_labels_csv(str(path), [f"{i}.jpg" for i in range(len(LABELS))], ["a", "b", "c"], LABELS)
    out = tmp_path / "stats"
    stats = label_stats.label_statistics(str(path), str(out))
    assert stats["images"] == 5
    assert stats["positives"] == {"a": 3, "b": 3, "c": 0}
    assert stats["unknown"] == {"a": 1, "b": 1, "c": 1}
    assert stats["frequency"]["a"] == 0.75  # 3 positives of 4 known
    assert stats["unknown_share"] == {"a": 0.2, "b": 0.2, "c": 0.2}
    assert stats["unknown_share_overall"] == 0.2  # 3 of 15 entries
    assert stats["labels_per_image"]["histogram"] == {"0": 0, "1": 4, "2": 1}
    assert json.loads((out / "stats.json").read_text())["conditional_probability"][0] == [1.0, 0.5, 0.0]
    for name in ("class_frequency.png", "labels_per_image.png", "cooccurrence_counts.png",
                 "conditional_probability.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A table works as well as a path.
    assert label_stats.label_statistics(read_labels(str(path)), str(out))["positives"] == stats["positives"]


def test_cli(tmp_path, capsys):
    path = tmp_path / "l.csv"
    write_labels_csv(str(path), ["x.jpg", "y.jpg"], ["a", "b"], [[1, 1], [0, 1]])
    assert label_stats.main([str(path), "-o", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "2 images, 2 classes, labels per image: mean 1.500" in out
    assert "unknown (-1) entries: none" in out


def test_unknown_share_line_names_the_most_unknown_classes(tmp_path, capsys):
    path = tmp_path / "partial.csv"
    labels = [[1, -1, -1], [-1, -1, 0], [0, -1, 1], [1, 0, -1]]  # b 3/4 unknown, c 2/4, a 1/4
    write_labels_csv(str(path), [f"{i}.jpg" for i in range(4)], ["a", "b", "c"], labels)
    assert label_stats.main([str(path), "-o", str(tmp_path / "s")]) == 0
    line = [row for row in capsys.readouterr().out.splitlines() if row.startswith("unknown")][0]
    assert line == "unknown (-1) entries: 50.0% of all; most unknown: b 75.0%, c 50.0%, a 25.0%"
