"""The sparse label format: read like the dense CSV by every mode, converted either way, one-line errors."""

import os

import numpy as np
import pytest
from PIL import Image

from dataset import check as checker
from dataset.demo import build_demo_data
from dataset.labels import LabelFileError, is_sparse_file, read_labels, write_labels_csv
from dataset.sparse_labels import main, to_dense, to_sparse, write_labels_sparse
from dataset.split import split_label_file


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The 60-image demo's train.csv with some labels made unknown (-1), as a dense file."""
    folder = tmp_path_factory.mktemp("demo")
    paths = build_demo_data(str(folder), 60, seed=0)
    table = read_labels(paths["train"])
    labels = table.labels.copy()
    labels[np.random.default_rng(0).random(labels.shape) < 0.3] = -1
    labels[0] = -1  # an image with no known label
    path = str(folder / "partial.csv")
    write_labels_csv(path, table.names, table.class_names, labels)
    return path


def assert_same_table(a, b):
    """Equal tables; `lines` are each file's own (a sparse file's rows start on line 3, a dense file's on 2)."""
    assert a.names == b.names and a.images == b.images and a.class_names == b.class_names
    assert a.labels.dtype == b.labels.dtype == np.int32
    np.testing.assert_array_equal(a.labels, b.labels)


def test_round_trip_gives_the_same_table(demo, tmp_path, capsys):
    dense = read_labels(demo)
    sparse_path = to_sparse(demo, str(tmp_path / "partial.sparse.csv"))
    assert is_sparse_file(sparse_path) and not is_sparse_file(demo)
    assert "labels" in capsys.readouterr().out
    sparse = read_labels(sparse_path)
    np.testing.assert_array_equal(sparse.labels, dense.labels)
    assert sparse.images == dense.images and sparse.class_names == dense.class_names
    # written in another folder: the image paths are made relative to it
    assert sparse.names == [os.path.relpath(image, tmp_path) for image in dense.images]
    back = to_dense(sparse_path, str(tmp_path / "back.csv"))
    np.testing.assert_array_equal(read_labels(back).labels, dense.labels)
    assert read_labels(back).images == dense.images


def test_beside_the_input_the_files_convert_byte_for_byte(demo, tmp_path):
    original = tmp_path / "train.csv"
    original.write_bytes(open(demo, "rb").read())
    sparse_path = to_sparse(str(original))
    assert sparse_path == str(tmp_path / "train.sparse.csv")
    assert_same_table(read_labels(sparse_path), read_labels(str(original)))
    assert read_labels(sparse_path).lines == [line + 1 for line in read_labels(str(original)).lines]
    os.rename(original, tmp_path / "kept.csv")
    assert to_dense(sparse_path) == str(original)
    assert original.read_bytes() == (tmp_path / "kept.csv").read_bytes()


def test_the_file_reads_as_documented(tmp_path):
    path = write(tmp_path, "t.sparse.csv", "# classes: cat;dog;sea lion\nimage,present,absent\n"
                                           "a.jpg,cat,dog\n\n\"b,1.jpg\",,cat; sea lion\nc.jpg,dog;,\n")
    table = read_labels(path, class_names=["cat", "dog", "sea lion"])
    assert table.class_names == ["cat", "dog", "sea lion"] and table.names == ["a.jpg", "b,1.jpg", "c.jpg"]
    assert table.labels.tolist() == [[1, 0, -1], [0, -1, 0], [-1, 1, -1]] and table.lines == [3, 5, 6]
    assert table.images[0] == str(tmp_path / "a.jpg")
    assert read_labels(path, image_root="/data").images[2] == "/data/c.jpg"
    write_labels_sparse(str(tmp_path / "w.csv"), table.names, table.class_names, table.labels)
    assert (tmp_path / "w.csv").read_text() == ("# classes: cat;dog;sea lion\nimage,present,absent\n"
                                                "a.jpg,cat,dog\n\"b,1.jpg\",,cat;sea lion\nc.jpg,dog,\n")


def test_a_spreadsheet_copy_with_bom_and_crlf_reads_the_same(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeff# classes: cat;dog\r\nimage,present,absent\r\na.jpg,cat,dog\r\nb.jpg,,cat\r\n".encode())
    table = read_labels(str(path))
    assert table.class_names == ["cat", "dog"] and table.labels.tolist() == [[1, 0], [0, -1]] and table.lines == [3, 4]


CLASSES = "# classes: cat;dog\nimage,present,absent\n"


@pytest.mark.parametrize("text, message", [
    (CLASSES + "a.jpg,cta,\n", "t.csv:3: class 'cta' is not in the classes of line 1 (did you mean 'cat'?)"),
    (CLASSES + "a.jpg,cat,dog\nb.jpg,cat;dog,dog\n", "t.csv:4: classes ['dog'] are both present and absent"),
    (CLASSES + "a.jpg,cat,\nb.jpg,,\n./a.jpg,dog,\n", "t.csv:5: image './a.jpg' repeats line 3; a sparse file has "
                                                      "one row per image"),
    (CLASSES + "a.jpg,cat\n", "t.csv:3: expected 3 columns (image, present, absent), found 2"),
    (CLASSES + ",cat,\n", "t.csv:3: empty image path"),
    (CLASSES, "t.csv: label file has a header but no rows"),
    ("# classes: cat;dog\nimage,cat,dog\n", "t.csv:2: expected the header 'image,present,absent' below the classes"),
    ("# classes:\nimage,present,absent\na.jpg,,\n", "t.csv:1: the classes line names no classes"),
    ("# classes: cat;;dog\nimage,present,absent\n", "t.csv:1: the classes line has an empty class name"),
    ("# classes: cat;dog;cat\nimage,present,absent\n", "t.csv:1: the classes line repeats class names ['cat']"),
    ("", "t.csv: label file is empty"),
])
def test_each_error_is_one_line_naming_file_and_line(tmp_path, text, message):
    path = write(tmp_path, "t.csv", text)
    with pytest.raises(LabelFileError) as info:
        read_labels(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_configured_classes_and_groups_are_checked(tmp_path):
    path = write(tmp_path, "t.csv", CLASSES + "a.jpg,cat,\n")
    with pytest.raises(LabelFileError, match=r"t.csv:1: header classes \['cat', 'dog'\] differ from the configured"):
        read_labels(path, class_names=["dog", "cat"])
    with pytest.raises(LabelFileError, match="t.csv:1: a groups head needs a class index per group"):
        read_labels(path, groups={"cat": 2, "dog": 2})


def test_writer_refuses_what_the_reader_would(tmp_path):
    out = str(tmp_path / "w.sparse.csv")
    with pytest.raises(ValueError, match=r"class name 'a;b' cannot go in a sparse label file"):
        write_labels_sparse(out, ["x.jpg"], ["a;b", "c"], [[1, 0]])
    with pytest.raises(ValueError, match=r"labels hold the values \[2\]; the sparse format holds 1, 0 and -1 only"):
        write_labels_sparse(out, ["x.jpg"], ["a", "c"], [[2, 0]])
    with pytest.raises(ValueError, match="image 'x.jpg' comes twice"):
        write_labels_sparse(out, ["x.jpg", "x.jpg"], ["a", "c"], [[1, 0], [0, 1]])
    assert not os.listdir(tmp_path)  # nothing half-written left behind


def test_the_tool_never_overwrites_and_says_so_in_one_line(demo, tmp_path, capsys):
    dense = tmp_path / "train.csv"
    dense.write_bytes(open(demo, "rb").read())
    taken = tmp_path / "train.sparse.csv"
    taken.write_text("mine\n")
    assert main(["to-sparse", str(dense)]) == 2
    assert capsys.readouterr().err == f"error: {taken}: already exists; remove it or name another output with -o\n"
    assert taken.read_text() == "mine\n"
    assert main(["to-sparse", str(dense), "-o", str(tmp_path / "s.csv")]) == 0
    assert main(["to-dense", str(tmp_path / "s.csv")]) == 0  # a sparse file not named *.sparse.csv
    assert (tmp_path / "s.dense.csv").read_bytes() == dense.read_bytes()
    assert main(["to-dense", str(tmp_path / "s.csv")]) == 2
    assert "s.dense.csv: already exists" in capsys.readouterr().err
    assert main(["to-dense", str(dense), "-o", str(tmp_path / "x.csv")]) == 2
    assert "train.csv: not a sparse label file" in capsys.readouterr().err
    assert main(["to-sparse", str(tmp_path / "s.csv"), "-o", str(tmp_path / "y.csv")]) == 2
    assert "s.csv: already in the sparse format" in capsys.readouterr().err


def test_a_dense_file_with_a_repeated_image_is_not_converted(tmp_path, capsys):
    path = write(tmp_path, "d.csv", "image,cat\na.jpg,1\nb.jpg,0\na.jpg,0\n")
    assert main(["to-sparse", path]) == 2
    assert "d.csv:4: image 'a.jpg' repeats line 2" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["d.csv"]


def test_text_format_converts_with_its_classes(tmp_path):
    path = write(tmp_path, "list.txt", "a.jpg 1 -1\nb.jpg 0 1\n")
    out = to_sparse(path, class_names=["cat", "dog"])
    assert out == str(tmp_path / "list.sparse.csv")
    assert read_labels(out).labels.tolist() == [[1, -1], [0, 1]]


def test_check_lists_each_bad_sparse_row_and_writes_a_sparse_clean_file(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    path = write(tmp_path, "t.sparse.csv", CLASSES + "a.jpg,cat,dog\nb.jpg,cow,\nmissing.jpg,dog,\na.jpg,,cat\n"
                                                     "c.jpg,dog,cat\n")
    report = checker.check_label_file(path)
    assert report["faulty_rows"] == [4, 5, 6]
    lines = "\n".join(report["lines"])
    assert "t.sparse.csv:4: b.jpg: fault: class 'cow' is not in the classes of line 1" in lines
    assert "t.sparse.csv:6: a.jpg: fault: duplicate of line 3" in lines
    clean = read_labels(report["clean_file"])
    assert is_sparse_file(report["clean_file"]) and clean.names == ["a.jpg", "c.jpg"]
    assert clean.labels.tolist() == [[1, 0], [0, 1]]


def test_split_keeps_the_sparse_format(demo, tmp_path):
    path = to_sparse(demo, str(tmp_path / "train.sparse.csv"))
    kept, held_out = split_label_file(path, 0.25, seed=0)
    assert kept.endswith("train.sparse.fit.csv") and all(is_sparse_file(p) for p in (kept, held_out))
    whole = read_labels(path)
    parts = [read_labels(p) for p in (kept, held_out)]
    assert sorted(parts[0].images + parts[1].images) == sorted(whole.images)
    by_image = dict(zip(whole.images, whole.labels.tolist()))
    assert all(by_image[image] == row for part in parts for image, row in zip(part.images, part.labels.tolist()))


def test_a_training_run_reads_sparse_files(demo, tmp_path):
    """Every mode reads label files through load_split; the training pipeline then sees the same labels."""
    from dataset.pipeline import PipelineSettings, make_dataset
    from dataset.run_splits import SplitSettings, load_training_splits

    folder = os.path.dirname(demo)
    dense = {split: os.path.join(folder, f"{split}.csv") for split in ("train", "val")}
    sparse = {split: to_sparse(path, str(tmp_path / f"{split}.sparse.csv")) for split, path in dense.items()}
    settings = SplitSettings(train_labels=sparse["train"], val_labels=sparse["val"], test_labels="", batch_size=8)
    train, val = load_training_splits(settings)
    dense_val = read_labels(dense["val"])
    assert val.images == dense_val.images and val.labels.tolist() == dense_val.labels.tolist()
    pipeline = PipelineSettings(image_size=32, batch_size=8, cache_images=False, shuffle_buffer=16)
    images, labels, paths = next(iter(make_dataset(train.images, train.labels, pipeline, training=False)))
    assert images.shape == (8, 32, 32, 3)
    by_path = dict(zip(train.images, read_labels(dense["train"]).labels.tolist()))
    assert [by_path[p.decode()] for p in paths.numpy()] == labels.numpy().tolist()
    images, labels = next(iter(make_dataset(train.images, train.labels, pipeline, training=True)))
    assert labels.shape == (8, 10) and set(np.unique(labels.numpy())) <= {0, 1}
