"""The data modes of run.py: check, import and stats, driven the way a user runs them."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT
from PIL import Image

from configs import Config
from dataset.labels import read_labels
from multi_label.tasks.check_labels import run_check
from multi_label.tasks.import_labels import run_import
from multi_label.tasks.label_stats import run_stats
from utils.config import ConfigError
from utils.run_folder import run_folders

VOC_XML = """<annotation><filename>{name}</filename>
{objects}</annotation>"""
VOC_OBJECT = "<object><name>{cls}</name><difficult>{difficult}</difficult></object>"


def make_voc(folder):
    folder.mkdir()
    for i, objects in enumerate([[("cat", 0)], [("dog", 0), ("cat", 1)], [("dog", 1)]]):
        Image.new("RGB", (16, 16), (i * 60, 20, 20)).save(folder / f"img{i}.jpg")
        body = "".join(VOC_OBJECT.format(cls=c, difficult=d) for c, d in objects)
        (folder / f"img{i}.xml").write_text(VOC_XML.format(name=f"img{i}.jpg", objects=body))


def config(**changes):
    return dataclasses.replace(Config(), **changes)


def test_import_voc_then_stats_then_check(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_voc(tmp_path / "voc")
    out = str(tmp_path / "labels" / "train.csv")
    run_import(config(import_format="voc", import_source=str(tmp_path / "voc"), import_output=out))
    table = read_labels(out)
    assert table.class_names == ["cat", "dog"]
    # a class present only as "difficult" is unknown (-1)
    assert table.labels.tolist() == [[1, 0], [-1, 1], [0, -1]]
    with pytest.raises(ConfigError, match="import_output=.* exists; choose another name or overwrite=True"):
        run_import(config(import_format="voc", import_source=str(tmp_path / "voc"), import_output=out))

    stats_config = config(train_labels=out, val_labels="", test_labels="", run_name="s")
    assert run_stats(stats_config) is None
    stats_dir = os.path.join(run_folders(stats_config.run_name)[0], "stats")
    stats = json.loads((tmp_path / stats_dir / "train" / "stats.json").read_text())
    assert stats["images"] == 3 and stats["positives"]["cat"] == 1 and stats["unknown"]["cat"] == 1

    assert run_check(config(train_labels=out, val_labels="", test_labels="")) == 0
    (tmp_path / "voc" / "img1.jpg").write_bytes(b"")  # a zero-byte image
    assert run_check(config(train_labels=out, val_labels="", test_labels="")) == 1
    assert [r[0] for r in [line.split(",") for line in open(tmp_path / "labels" / "train.clean.csv")]][1:] == [
        "../voc/img0.jpg", "../voc/img2.jpg"]


def test_check_names_the_setting_of_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"val_labels='.*none.csv': label file not found"):
        run_check(config(train_labels="", val_labels=str(tmp_path / "none.csv"), test_labels=""))


def test_text_import_takes_the_configured_class_names(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.jpg")
    (tmp_path / "list.txt").write_text("a.jpg 1 0\n")
    out = str(tmp_path / "out.csv")
    assert run_import(config(import_format="text", import_source=str(tmp_path / "list.txt"), import_output=out,
                             class_names=["x", "y"])) is None
    assert read_labels(out).class_names == ["x", "y"]
    make_voc(tmp_path / "voc")  # a format that names its classes keeps its own
    run_import(config(import_format="voc", import_source=str(tmp_path / "voc"), import_output=str(tmp_path / "v.csv"),
                      class_names=["dog", "cat"]))
    assert read_labels(str(tmp_path / "v.csv")).class_names == ["cat", "dog"]


def test_import_option_mismatch_names_the_setting(tmp_path):
    make_voc(tmp_path / "voc")
    with pytest.raises(ConfigError, match=r"import_options=\{'nope': 1\} does not fit import_format='voc'"):
        run_import(config(import_format="voc", import_source=str(tmp_path / "voc"),
                          import_output=str(tmp_path / "x.csv"), import_options={"nope": 1}))


def test_import_with_a_validation_split(tmp_path):
    make_voc(tmp_path / "voc")
    out = tmp_path / "train.csv"
    settings = dict(import_format="voc", import_source=str(tmp_path / "voc"), import_output=str(out),
                    import_val_fraction=0.34)
    run_import(config(**settings))
    whole, fit, val = (read_labels(str(tmp_path / name)) for name in ("train.csv", "train.fit.csv", "train.val.csv"))
    assert len(whole) == 3 and (len(fit), len(val)) == (2, 1)
    assert sorted(fit.images + val.images) == sorted(whole.images)
    (tmp_path / "train.csv").rename(tmp_path / "moved.csv")  # the whole file gone, its parts still there
    with pytest.raises(ConfigError, match=r"import_val_fraction=0.34: '.*train.fit.csv' exists"):
        run_import(config(**settings))  # refused before importing: nothing is overwritten
    assert not out.exists()


def test_check_mode_exit_code_through_run_py(tmp_path):
    (tmp_path / "a.jpg").write_text("not an image")
    (tmp_path / "train.csv").write_text("image,x\na.jpg,1\n")
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "mode=check", "train_labels='train.csv'",
                             "val_labels=''", "test_labels=''"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "a.jpg" in result.stdout and (tmp_path / "train.clean.csv").is_file()
    assert (tmp_path / "train.csv").read_text() == "image,x\na.jpg,1\n"  # the original is untouched
