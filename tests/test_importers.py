import json
import os

import numpy as np
import pytest

from dataset.importers import cli as import_labels
from dataset.importers.coco import coco_labels, import_coco
from dataset.importers.names_csv import import_names_csv
from dataset.importers.text import import_text
from dataset.importers.voc import import_voc
from dataset.labels import LabelFileError, read_labels

CARDS = "/work/shared/data/cards"


# ---- COCO -------------------------------------------------------------------------------------

def _coco(tmp_path, file_name_0="a.jpg"):
    data = {
        "images": [{"id": 10, "file_name": file_name_0}, {"id": 20, "file_name": "b.jpg"},
                   {"id": 30, "file_name": "c.jpg"}, {"id": 40, "file_name": "empty.jpg"}],
        # Out of id order on purpose: columns follow the ids.
        "categories": [{"id": 7, "name": "zebra"}, {"id": 2, "name": "cat"}, {"id": 5, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 2, "iscrowd": 0, "segmentation": [[1.5, 2.0, 3, 4e1]]},
            {"id": 2, "image_id": 10, "category_id": 2, "iscrowd": 0, "bbox": [1, 2, 3, 4]},
            {"id": 3, "image_id": 20, "category_id": 5, "iscrowd": 1,
             "segmentation": {"counts": [1, 2, 3], "size": [4, 5]}},
            {"id": 4, "image_id": 30, "category_id": 5, "iscrowd": 1},
            {"id": 5, "image_id": 30, "category_id": 5, "iscrowd": 0},
            {"id": 6, "image_id": 30, "category_id": 7},
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data, indent=2))
    return str(path)


@pytest.mark.parametrize("crowd, image_b", [("positive", [0, 1, 0]), ("ignore", [0, 0, 0]), ("unknown", [0, -1, 0])])
def test_coco_crowd_modes(tmp_path, crowd, image_b):
    names, classes, labels = coco_labels(_coco(tmp_path), crowd=crowd)
    assert classes == ["cat", "dog", "zebra"]
    assert names == ["a.jpg", "b.jpg", "c.jpg", "empty.jpg"]
    np.testing.assert_array_equal(labels, [[1, 0, 0], image_b, [0, 1, 1], [0, 0, 0]])


def test_coco_drop_empty_and_prefix(tmp_path):
    out = tmp_path / "out" / "train.csv"
    table = import_coco(_coco(tmp_path), str(out), image_prefix=str(tmp_path / "train2017"), drop_empty=True)
    assert table.names == ["../train2017/a.jpg", "../train2017/b.jpg", "../train2017/c.jpg"]
    back = read_labels(str(out))
    assert back.images == [str(tmp_path / "train2017" / n) for n in ("a.jpg", "b.jpg", "c.jpg")]
    np.testing.assert_array_equal(back.labels, table.labels)


def test_coco_bracket_in_file_name_survives(tmp_path):
    names, _, _ = coco_labels(_coco(tmp_path, file_name_0="shot[1,2].jpg"))
    assert names[0] == "shot[1,2].jpg"


def test_coco_errors_name_the_problem(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"images": [],\n "categories": [}')
    with pytest.raises(LabelFileError, match=r"bad\.json:2: not valid JSON"):
        coco_labels(str(path))
    data = json.loads(open(_coco(tmp_path)).read())
    data["annotations"].append({"id": 99, "image_id": 10, "category_id": 3})
    path.write_text(json.dumps(data))
    with pytest.raises(LabelFileError, match=r"annotations\[6\] \(id 99\) has category_id 3"):
        coco_labels(str(path))
    with pytest.raises(ValueError, match="crowd must be one of"):
        coco_labels(str(path), crowd="maybe")


# ---- VOC --------------------------------------------------------------------------------------

def _voc_xml(filename, objects):
    body = "".join(
        f"<object><name>{name}</name><difficult>{int(difficult)}</difficult>"
        f"<part><name>hand</name></part></object>" for name, difficult in objects)
    return f"<annotation><filename>{filename}</filename>{body}</annotation>"


def _voc_layout(tmp_path):
    root = tmp_path / "VOC"
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    files = {
        "0001": [("dog", False), ("cat", True)],  # cat only difficult
        "0002": [("cat", True), ("cat", False)],  # cat also non-difficult: present
        "0003": [("person", False)],
    }
    for stem, objects in files.items():
        (root / "Annotations" / f"{stem}.xml").write_text(_voc_xml(f"{stem}.jpg", objects))
    (root / "ImageSets" / "Main" / "train.txt").write_text("0003\n0001\n")
    return root


@pytest.mark.parametrize("difficult", [-1, 0, 1])
def test_voc_difficult_and_layout(tmp_path, difficult):
    root = _voc_layout(tmp_path)
    out = root / "labels.csv"
    table = import_voc(str(root), str(out), difficult=difficult)
    assert table.class_names == ["cat", "dog", "person"]  # sorted; <part> names are not classes
    assert table.names == ["JPEGImages/0001.jpg", "JPEGImages/0002.jpg", "JPEGImages/0003.jpg"]
    np.testing.assert_array_equal(table.labels, [[difficult, 1, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(read_labels(str(out)).labels, table.labels)


def test_voc_split_and_given_classes(tmp_path):
    root = _voc_layout(tmp_path)
    table = import_voc(str(root), str(tmp_path / "t.csv"), split="train", class_names=["person", "dog", "cat"])
    assert table.names == ["VOC/JPEGImages/0003.jpg", "VOC/JPEGImages/0001.jpg"]
    np.testing.assert_array_equal(table.labels, [[1, 0, 0], [0, 1, -1]])
    with pytest.raises(LabelFileError, match=r"0001\.xml: object class 'dog' is not one of"):
        import_voc(str(root), str(tmp_path / "t.csv"), class_names=["cat", "person"])


def test_voc_flat_layout_and_malformed(tmp_path):
    (tmp_path / "a.xml").write_text(_voc_xml("a.JPG", [("ace", False)]))
    (tmp_path / "b.xml").write_text("<annotation><filename>b.JPG</filename>\n<object>")
    with pytest.raises(LabelFileError, match=r"b\.xml:2: malformed XML"):
        import_voc(str(tmp_path), str(tmp_path / "out.csv"))
    with pytest.warns(UserWarning, match=r"skipped: .*b\.xml:2"):
        table = import_voc(str(tmp_path), str(tmp_path / "out.csv"), skip_malformed=True)
    assert table.names == ["a.JPG"] and table.class_names == ["ace"]


@pytest.mark.skipif(not os.path.isdir(CARDS), reason="cards example set not present")
def test_voc_real_cards_set(tmp_path):
    counts = {}
    for split, images in (("train", 296), ("test", 67)):
        table = import_voc(f"{CARDS}/{split}", str(tmp_path / f"{split}.csv"))
        assert len(table) == images
        assert table.class_names == ["ace", "jack", "king", "nine", "queen", "ten"]
        assert all(os.path.isfile(p) for p in read_labels(str(tmp_path / f"{split}.csv")).images)
        counts[split] = np.bincount((table.labels == 1).sum(axis=1)).tolist()
    assert counts["train"] == [0, 185, 62, 35, 14]  # as the set's README states


# ---- names CSV and text -------------------------------------------------------------------------

def test_names_csv_planet_style(tmp_path):
    src = tmp_path / "train_v2.csv"
    src.write_text("image_name,tags\ntrain_0,haze primary\ntrain_1,\ntrain_2,clear  water\ntrain_0,water\n")
    table = import_names_csv(str(src), str(tmp_path / "out.csv"), image_suffix=".jpg",
                             image_root=str(tmp_path / "jpg"))
    assert table.class_names == ["clear", "haze", "primary", "water"]
    assert table.names == ["jpg/train_0.jpg", "jpg/train_1.jpg", "jpg/train_2.jpg"]  # duplicates merged
    np.testing.assert_array_equal(table.labels, [[0, 1, 1, 1], [0, 0, 0, 0], [1, 0, 0, 1]])


def test_names_csv_delimiter_columns_and_unknown(tmp_path):
    src = tmp_path / "n.csv"
    src.write_text('labels,file\n"b|a",x.png\nc,y.png\n')
    table = import_names_csv(str(src), str(tmp_path / "out.csv"), delimiter="|", image_column="file",
                             labels_column="labels", class_names=["a", "b", "c", "d"])
    np.testing.assert_array_equal(table.labels, [[1, 1, 0, 0], [0, 0, 1, 0]])
    with pytest.raises(LabelFileError, match=r"n\.csv:3: label names \['c'\] are not in"):
        import_names_csv(str(src), str(tmp_path / "out.csv"), delimiter="|", image_column="file",
                         labels_column="labels", class_names=["a", "b"])


def test_text_import_and_no_overwrite(tmp_path):
    src = tmp_path / "list.txt"
    src.write_text("img/a.jpg 1 0 -1\nimg/b.jpg 0 1 1\n")
    out = tmp_path / "csv" / "labels.csv"
    table = import_text(str(src), str(out), ["x", "y", "z"])
    assert table.names == ["../img/a.jpg", "../img/b.jpg"]
    assert read_labels(str(out)).images == [str(tmp_path / "img" / "a.jpg"), str(tmp_path / "img" / "b.jpg")]
    before = src.read_bytes()
    with pytest.raises(ValueError, match="would overwrite"):
        import_text(str(src), str(src), ["x", "y", "z"])
    assert src.read_bytes() == before


def test_cli(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        import_labels.main(["coco", "--help"])
    assert e.value.code == 0
    out = tmp_path / "c.csv"
    assert import_labels.main(["coco", _coco(tmp_path), "-o", str(out), "--crowd", "unknown"]) == 0
    assert "images: 4   classes: 3" in capsys.readouterr().out
    assert read_labels(str(out)).labels[1, 1] == -1
    assert import_labels.main(["text", str(tmp_path / "nope.txt"), "-o", str(out), "--classes", "a,b"]) == 2
    assert "nope.txt: label file not found" in capsys.readouterr().err
