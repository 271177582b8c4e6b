"""Label files: the canonical CSV, the text format, and errors that name the file and line."""

import numpy as np
import pytest

from dataset.labels import LabelFileError, read_labels, write_labels_csv
from dataset.run_splits import SplitSettings, load_split, load_training_splits
from utils.config import ConfigError


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_csv_with_unknown_values_and_relative_paths(tmp_path):
    path = write(tmp_path, "train.csv", "image,cat,dog\nimg/a.jpg,1,0\nimg/b.jpg,-1,1\n\n")
    table = read_labels(path)
    assert table.class_names == ["cat", "dog"]
    assert table.labels.tolist() == [[1, 0], [-1, 1]]
    assert table.images[0] == str(tmp_path / "img" / "a.jpg")
    assert table.names == ["img/a.jpg", "img/b.jpg"] and table.lines == [2, 3]


def test_image_root_overrides_folder(tmp_path):
    path = write(tmp_path, "t.csv", "image,cat\na.jpg,1\n")
    assert read_labels(path, image_root="/data/photos").images == ["/data/photos/a.jpg"]


def test_text_format_needs_class_names(tmp_path):
    path = write(tmp_path, "train.txt", "a.jpg 1 0 -1\n# comment\nb.jpg 0 1 1\n")
    table = read_labels(path, class_names=["x", "y", "z"])
    assert table.labels.tolist() == [[1, 0, -1], [0, 1, 1]]
    with pytest.raises(LabelFileError, match="train.txt: the text label format needs class_names"):
        read_labels(path)


@pytest.mark.parametrize("text, message", [
    ("image,cat,dog\na.jpg,1\n", "t.csv:2: expected 3 columns (image + 2 classes), found 2"),
    ("image,cat,dog\na.jpg,1,0\nb.jpg,2,0\n", "t.csv:3: column 'cat' has value '2'; expected {1, 0, -1}"),
    ("image,cat,dog\na.jpg,1,yes\n", "t.csv:2: column 'dog' has value 'yes'; expected {1, 0, -1}"),
    ("image,cat,cat\na.jpg,1,0\n", "t.csv:1: header repeats class names ['cat']"),
    ("path,cat\na.jpg,1\n", "t.csv:1: header must start with 'image'"),
    ("image,cat\n,1\n", "t.csv:2: empty image path"),
    ("image,cat\n", "t.csv: label file has a header but no rows"),
    ("  \n", "t.csv: label file is empty"),
])
def test_bad_csv_lines(tmp_path, text, message):
    path = write(tmp_path, "t.csv", text)
    with pytest.raises(LabelFileError) as info:
        read_labels(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_text_line_names_line(tmp_path):
    path = write(tmp_path, "t.txt", "a.jpg 1 0\nb.jpg 1\n")
    with pytest.raises(LabelFileError, match=r"t.txt:2: expected an image path and 2 values, found 2 fields"):
        read_labels(path, class_names=["x", "y"])


def test_group_values(tmp_path):
    path = write(tmp_path, "g.csv", "image,colour,type\na.jpg,11,-1\nb.jpg,0,5\n")
    table = read_labels(path, groups={"colour": 12, "type": 6})
    assert table.labels.tolist() == [[11, -1], [0, 5]]
    bad = write(tmp_path, "b.csv", "image,colour,type\na.jpg,12,0\n")
    message = "b.csv:2: column 'colour' has value '12'; expected an integer from -1 to 11"
    with pytest.raises(LabelFileError, match=message):
        read_labels(bad, groups={"colour": 12, "type": 6})


def test_write_round_trip(tmp_path):
    path = str(tmp_path / "out" / "x.csv")
    write_labels_csv(path, ["a b.jpg", "c,d.jpg"], ["p", "q"], np.array([[1, -1], [0, 1]]))
    table = read_labels(path)
    assert table.names == ["a b.jpg", "c,d.jpg"] and table.labels.tolist() == [[1, -1], [0, 1]]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.csv"]  # no temporary file left behind


def test_missing_file():
    with pytest.raises(LabelFileError, match="nope.csv: label file not found"):
        read_labels("nope.csv")


def splits(tmp_path, **changes):
    """Train (3 images, classes a b), val (a b) and test (a c) label files."""
    files = {"train": "image,a,b\n1.jpg,1,0\n2.jpg,0,1\n3.jpg,1,1\n", "val": "image,a,b\n4.jpg,1,0\n",
             "test": "image,a,c\n5.jpg,0,1\n"}
    paths = {f"{split}_labels": write(tmp_path, f"{split}.csv", text) for split, text in files.items()}
    return SplitSettings(**{**paths, "batch_size": 2, **changes})


def test_load_split_names_the_setting(tmp_path):
    settings = splits(tmp_path)
    assert load_split(settings, "val_labels").class_names == ["a", "b"]
    assert load_split(splits(tmp_path, val_labels=""), "val_labels") is None
    with pytest.raises(ConfigError, match=r"^test_labels='.*test.csv' has classes \['a', 'c'\], but the model has"):
        load_split(settings, "test_labels", ["a", "b"])
    with pytest.raises(ConfigError, match=r"^val_labels='x.csv': label file not found$"):
        load_split(splits(tmp_path, val_labels="x.csv"), "val_labels")
    with pytest.raises(ValueError, match="key must be one of"):
        load_split(settings, "image_root")


def test_load_training_splits_checks_batch_and_every_split(tmp_path):
    train, val = load_training_splits(splits(tmp_path, test_labels=""))
    assert (len(train), len(val)) == (3, 1)
    with pytest.raises(ConfigError, match="test_labels=.* has classes"):  # found before training, not after
        load_training_splits(splits(tmp_path))
    with pytest.raises(ConfigError, match=r"train_labels='.*' has 3 images, fewer than batch_size=4; lower batch_size"):
        load_training_splits(splits(tmp_path, test_labels="", batch_size=4))
    with pytest.raises(ConfigError, match="train_labels is empty"):
        load_training_splits(splits(tmp_path, train_labels=""))
