import io
import json
import os
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from dataset.labels import read_labels, write_labels_csv
from dataset.tfrecord import tfrecord_dataset, tfrecord_source, verify_tfrecords, write_tfrecords


def _table(tmp_path, count=10, size=(20, 12)):
    rng = np.random.default_rng(0)
    names = []
    for i in range(count):
        image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        name = f"img/{i}.{'png' if i % 3 == 0 else 'jpg'}"
        (tmp_path / "img").mkdir(exist_ok=True)
        image.save(tmp_path / name)
        names.append(name)
    labels = rng.integers(-1, 2, (count, 4))
    write_labels_csv(str(tmp_path / "labels.csv"), names, ["a", "b", "c", "d"], labels)
    return read_labels(str(tmp_path / "labels.csv"))


def _records(dataset):
    return {(encoded.numpy(), tuple(labels.numpy().tolist()), path.numpy().decode())
            for encoded, labels, path in dataset}


def test_round_trip_gives_the_table(tmp_path):
    table = _table(tmp_path)
    shards = write_tfrecords(table, str(tmp_path / "tfr"), num_shards=3, workers=2)
    assert [pathlib.Path(s).name for s in shards] == [f"data-0000{i}-of-00003.tfrecord" for i in range(3)]
    expected = {(open(image, "rb").read(), tuple(row.tolist()), name)
                for image, row, name in zip(table.images, table.labels, table.names)}
    dataset = tfrecord_dataset(str(tmp_path / "tfr" / "*.tfrecord"), 4, shuffle_files=True, seed=1)
    assert dataset.element_spec[1] == tf.TensorSpec([4], tf.int32)
    assert _records(dataset) == expected
    assert _records(tfrecord_dataset(shards, 4)) == expected
    info = json.loads((tmp_path / "tfr" / "data.json").read_text())
    assert info["class_names"] == ["a", "b", "c", "d"] and info["num_examples"] == 10
    assert [s["examples"] for s in info["shards"]] == [4, 3, 3]
    assert "10 examples in 3 shards" in (tmp_path / "tfr" / "data.txt").read_text()


def test_auto_shards_resize_and_stale_shards(tmp_path):
    table = _table(tmp_path, count=4, size=(40, 20))
    out = tmp_path / "tfr"
    write_tfrecords(table, str(out), num_shards=2)
    shards = write_tfrecords(table, str(out), resize=10)  # auto: tiny set -> one shard
    assert sorted(p.name for p in out.glob("*.tfrecord")) == ["data-00000-of-00001.tfrecord"]
    for encoded, _, _ in tfrecord_dataset(shards, 4):
        image = Image.open(io.BytesIO(encoded.numpy()))
        assert image.format == "JPEG" and image.size == (10, 5)


def test_damaged_shard_is_named(tmp_path):
    table = _table(tmp_path, count=4)
    shards = write_tfrecords(table, str(tmp_path / "tfr"), num_shards=2)
    assert verify_tfrecords(shards, 4) == {shards[0]: 2, shards[1]: 2}
    data = bytearray(pathlib.Path(shards[1]).read_bytes())
    data[40] ^= 0xFF
    pathlib.Path(shards[1]).write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"data-00001-of-00002\.tfrecord: record 0 is damaged"):
        verify_tfrecords(str(tmp_path / "tfr" / "*.tfrecord"), 4)


def test_missing_image_names_the_row(tmp_path):
    table = _table(tmp_path, count=3)
    (tmp_path / "img" / "1.jpg").unlink()
    with pytest.raises(ValueError, match=r"labels\.csv:3: image not found"):
        write_tfrecords(table, str(tmp_path / "tfr"))
    with pytest.raises(ValueError, match=r"labels\.csv:3: cannot read image"):
        write_tfrecords(table, str(tmp_path / "tfr"), num_shards=1)
    assert not list((tmp_path / "tfr").glob("*"))  # no torn or temporary shard left behind


def test_source_writes_on_first_use_and_again_when_the_labels_change(tmp_path, capsys):
    table = _table(tmp_path, count=4)
    expected = {(open(image, "rb").read(), tuple(row.tolist()), name)
                for image, row, name in zip(table.images, table.labels, table.names)}
    assert _records(tfrecord_source(table, seed=0)) == expected
    assert "Writing TFRecords" in capsys.readouterr().out and (tmp_path / "labels.tfrecords" / "data.json").is_file()
    assert _records(tfrecord_source(table, seed=0)) == expected
    assert "Writing TFRecords" not in capsys.readouterr().out  # fresh shards are reused
    sidecar = tmp_path / "labels.tfrecords" / "data.json"
    os.utime(sidecar, (0, 0))  # the label file is newer than the shards now
    tfrecord_source(table, tfrecord_dir=str(tmp_path / "elsewhere"), seed=0)
    assert "Writing TFRecords" in capsys.readouterr().out
    assert (tmp_path / "elsewhere" / "labels" / "data.json").is_file()
    tfrecord_source(table, seed=0)
    assert "Writing TFRecords" in capsys.readouterr().out
