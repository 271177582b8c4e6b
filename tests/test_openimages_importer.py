"""The Open Images importer: its real label and class files to the sparse label format, streamed."""

import dataclasses

import pytest

from configs import Config
from dataset.importers import cli
from dataset.importers.openimages import import_openimages, read_classes
from dataset.labels import LabelFileError, is_sparse_file, read_labels
from multi_label.tasks.import_labels import run_import
from utils.config import validate

# oidv6-class-descriptions.csv: its header, then LabelName,DisplayName; two MIDs share "Tool"
DESCRIPTIONS = """LabelName,DisplayName
/m/011k07,Tortoise
/m/01g317,Person
/m/07k1x,Tool
/m/0c9ph5,Flower
/m/0cgh4,Building
/m/0h8n5zk,Tool
/m/0dv5r,"Camera, digital"
"""
# the human-verified image-level labels, out of ImageID order on purpose
LABELS = """ImageID,Source,LabelName,Confidence
000002b66c9c498e,verification,/m/011k07,1
000002b66c9c498e,verification,/m/01g317,0
000002b97e5471a0,crowdsource-verification,/m/0c9ph5,1
000002b66c9c498e,crowdsource-verification,/m/0cgh4,1
00000b4dcff7f799,verification,/m/0h8n5zk,1
000002b97e5471a0,verification,/m/0dv5r,0
00000b4dcff7f799,verification,/m/07k1x,0
000002b97e5471a0,human,/m/0c9ph5,1
"""
NAMES = ["Tortoise", "Person", "Tool (/m/07k1x)", "Flower", "Building", "Tool (/m/0h8n5zk)", "Camera, digital"]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "labels.csv").write_text(LABELS)
    (tmp_path / "classes.csv").write_text(DESCRIPTIONS)
    return str(tmp_path / "labels.csv"), str(tmp_path / "classes.csv")


def test_unsorted_rows_give_one_row_per_image(files, tmp_path, capsys):
    labels, descriptions = files
    out = str(tmp_path / "out" / "train.sparse.csv")
    assert import_openimages(labels, out, descriptions, image_folder=str(tmp_path / "images")) == out
    table = read_labels(out)
    assert is_sparse_file(out) and table.class_names == NAMES
    assert table.names == [f"../images/{image}.jpg" for image in ("000002b66c9c498e", "000002b97e5471a0",
                                                                    "00000b4dcff7f799")]
    assert table.labels.tolist() == [[1, 0, -1, -1, 1, -1, -1],  # rows 2, 3 and 5 of the file
                                     [-1, -1, -1, 1, -1, -1, 0],  # Flower twice (two sources): once
                                     [-1, -1, 0, -1, -1, 1, -1]]
    printed = capsys.readouterr().out
    assert "images: 3   classes: 7" in printed and "0 labels verified both present and absent" in printed
    with open(out) as f:
        assert f.readline() == "# classes: " + ";".join(NAMES) + "\n"


def test_verified_both_ways_is_unknown(files, tmp_path, capsys):
    labels, descriptions = files
    with open(labels, "a") as f:
        f.write("000002b66c9c498e,verification,/m/0cgh4,0\n")  # Building was verified present above
    table = read_labels(import_openimages(labels, str(tmp_path / "o.csv"), descriptions))
    assert table.labels[0].tolist() == [1, 0, -1, -1, -1, -1, -1]
    assert "1 labels verified both present and absent (unknown)" in capsys.readouterr().out
    assert table.names[0] == "000002b66c9c498e.jpg"  # default image folder: the label file's


def test_trainable_classes_keep_the_description_order_and_names(files, tmp_path, capsys):
    labels, descriptions = files
    trainable = tmp_path / "oidv6-classes-trainable.txt"
    trainable.write_text("/m/0h8n5zk\n/m/011k07\n\n/m/0c9ph5\n")
    table = read_labels(import_openimages(labels, str(tmp_path / "o.csv"), descriptions, str(trainable)))
    # a duplicate display name keeps its MID even when the other one is not kept
    assert table.class_names == ["Tortoise", "Flower", "Tool (/m/0h8n5zk)"]
    assert table.labels.tolist() == [[1, -1, -1], [-1, 1, -1], [-1, -1, 1]]
    assert "4 rows of classes not kept, 0 images with no label kept" in capsys.readouterr().out
    trainable.write_text("/m/0cgh4\n")  # only image 1 has a Building label
    table = read_labels(import_openimages(labels, str(tmp_path / "p.csv"), descriptions, str(trainable)))
    assert table.names == ["000002b66c9c498e.jpg"] and table.labels.tolist() == [[1]]
    assert "2 images with no label kept" in capsys.readouterr().out


def test_boxable_descriptions_have_no_header(tmp_path):
    path = tmp_path / "class-descriptions-boxable.csv"
    path.write_text("/m/011k07,Tortoise\n/m/01g317,Person\n")
    assert read_classes(str(path)) == (["/m/011k07", "/m/01g317"], ["Tortoise", "Person"])


@pytest.mark.parametrize("file, text, message", [
    ("labels", LABELS + "000002b66c9c498e,verification,/m/0zzzz,1\n",
     r"labels.csv:10: LabelName '/m/0zzzz' is not in the class descriptions"),
    ("labels", LABELS + "000002b66c9c498e,machine,/m/01g317,0.7\n",
     r"labels.csv:10: Confidence '0.7'; expected 1 \(verified present\) or 0"),
    ("labels", "ImageID,LabelName\n", r"labels.csv:1: expected Open Images' header ImageID,Source,LabelName"),
    ("labels", LABELS + "000002b66c9c498e,verification,/m/01g317\n",
     r"labels.csv:10: expected 4 columns like the header, found 3"),
    ("labels", LABELS.replace("000002b97e5471a0,human", ",human"), r"labels.csv:9: empty ImageID"),
    ("classes", DESCRIPTIONS + "/m/011k07,Turtle\n", r"classes.csv:9: LabelName '/m/011k07' repeats line 2"),
    ("classes", DESCRIPTIONS + "/m/0abc,Salt;pepper\n", r"classes.csv:9: DisplayName 'Salt;pepper' holds ';'"),
    ("classes", DESCRIPTIONS + "/m/0abc\n", r"classes.csv:9: expected LabelName,DisplayName"),
])
def test_errors_are_one_line_naming_file_and_line(files, tmp_path, file, text, message):
    (tmp_path / f"{file}.csv").write_text(text)
    with pytest.raises(LabelFileError, match=message) as info:
        import_openimages(*files[:1], str(tmp_path / "o.csv"), files[1])
    assert "\n" not in str(info.value)
    assert not (tmp_path / "o.csv").exists()


def test_trainable_list_errors(files, tmp_path):
    trainable = tmp_path / "t.txt"
    trainable.write_text("/m/011k07\n/m/0nope\n")
    with pytest.raises(LabelFileError, match=r"t.txt:2: LabelName '/m/0nope' is not in the class descriptions"):
        import_openimages(files[0], str(tmp_path / "o.csv"), files[1], str(trainable))
    (tmp_path / "classes.csv").write_text(DESCRIPTIONS + "/m/0unused,Unused\n")
    trainable.write_text("/m/0unused\n")  # no image has a label of it
    with pytest.raises(ValueError, match="nothing to import"):
        import_openimages(files[0], str(tmp_path / "o.csv"), files[1], str(trainable))
    assert not (tmp_path / "o.csv").exists()


def test_mode_import_with_a_validation_split(files, tmp_path):
    labels, descriptions = files
    out = tmp_path / "train.sparse.csv"
    config = validate(dataclasses.replace(
        Config(), mode="import", import_format="openimages", import_source=labels, import_output=str(out),
        import_options={"class_descriptions": descriptions, "image_folder": str(tmp_path / "images")},
        import_val_fraction=0.5))
    run_import(config)
    fit, val = (read_labels(str(tmp_path / f"train.sparse.{part}.csv")) for part in ("fit", "val"))
    assert is_sparse_file(str(tmp_path / "train.sparse.fit.csv")) and len(fit) + len(val) == 3 and len(val)
    assert sorted(fit.images + val.images) == sorted(read_labels(str(out)).images)


def test_cli(files, tmp_path, capsys):
    out = tmp_path / "c.sparse.csv"
    assert cli.main(["openimages", files[0], "--class-descriptions", files[1], "-o", str(out)]) == 0
    assert "images: 3   classes: 7" in capsys.readouterr().out
    assert cli.main(["openimages", files[0], "-o", str(out), "--class-descriptions", "nope.csv"]) == 2
    assert "nope.csv: class descriptions file not found" in capsys.readouterr().err
