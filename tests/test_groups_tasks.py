"""The groups head in mode=predict, debug and convert: per-group probabilities and classes, layer
statistics of the summed loss, and every export format with one named softmax output per group."""

import csv
import dataclasses
import json
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import GROUPS
from tiny_run import tiny_config

from dataset.pipeline import make_dataset
from dataset.run_splits import load_split
from multi_label.export.formats import EXPORTERS
from multi_label.export.parity import QUANTIZED_FORMATS
from multi_label.tasks.convert import run_convert
from multi_label.tasks.debug import run_debug
from multi_label.tasks.predict import run_predict
from multi_label.tasks.settings import pipeline_settings, split_settings

COLUMNS = ["image", *GROUPS, *(f"{group}:{k}" for group, size in GROUPS.items() for k in range(size))]
TOLERANCE = 1e-5  # the SavedModel's per-group probabilities against Keras's


def onnx_packages_load():
    """Whether tf2onnx and onnxruntime load: any failure, not only ImportError, leaves the onnx format out."""
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def trained(groups_run):
    """The session's groups run (conftest.GROUPS_RUN: 1 epoch on the 42 training images of the tiny demo, 32 px)."""
    root, _ = groups_run
    data = root / "data" / "demo"
    config = tiny_config(data, head="groups", groups=GROUPS, run_name="groups", epochs=1, warmup_epochs=0,
                         checkpoint=str(root / "models" / "groups" / "best.keras"),
                         **{f"{split}_labels": str(data / f"{split}_groups.csv") for split in ("train", "val", "test")})
    table = load_split(split_settings(config), "test_labels")
    model = keras.saving.load_model(config.checkpoint, compile=False, safe_mode=True)
    pixels = np.concatenate([batch.numpy() for batch, _, _ in make_dataset(
        table.images, table.labels, pipeline_settings(config), training=False)])
    logits = model.predict_on_batch(pixels)
    # the model's own outputs, softmax per group in NumPy
    expected = {g: np.exp(v - v.max(1, keepdims=True)) / np.exp(v - v.max(1, keepdims=True)).sum(1, keepdims=True)
                for g, v in logits.items()}
    return {"root": root, "config": config, "table": table, "model": model, "pixels": pixels, "expected": expected}


def test_predict_csv_has_each_groups_probabilities_and_class(trained, monkeypatch, capsys):
    monkeypatch.chdir(trained["root"])
    table, expected = trained["table"], trained["expected"]
    run_predict(dataclasses.replace(trained["config"], mode="predict", input=table.source, output="groups.csv"))
    with open(trained["root"] / "groups.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == COLUMNS
    assert [row[0] for row in rows[1:]] == table.names
    for i, row in enumerate(rows[1:]):
        cells = dict(zip(COLUMNS, row))
        for group, size in GROUPS.items():
            probabilities = np.array([float(cells[f"{group}:{k}"]) for k in range(size)])
            assert abs(probabilities.sum() - 1) < 1e-5
            assert int(cells[group]) == int(np.argmax(expected[group][i])) == int(np.argmax(probabilities))
            assert np.abs(probabilities - expected[group][i]).max() < 1e-6  # written with 6 decimals
    out = capsys.readouterr().out
    width = max(len(name) for name in table.names) + 2
    first = ", ".join(f"{g}={int(np.argmax(expected[g][0]))} ({expected[g][0].max():.2f})" for g in GROUPS)
    assert f"{table.names[0]:<{width}}{first}\n" in out
    assert (f"Labelled {len(table)} images (0 skipped) with the most probable class of each of 4 groups "
            "(pos1, pos2, pos3, pos4); wrote groups.csv") in out


def test_predict_json_has_each_groups_probabilities_and_class(trained, monkeypatch):
    monkeypatch.chdir(trained["root"])
    table, expected = trained["table"], trained["expected"]
    run_predict(dataclasses.replace(trained["config"], mode="predict", input=table.source, output="groups.json"))
    document = json.loads((trained["root"] / "groups.json").read_text())
    assert document["groups"] == GROUPS and document["skipped"] == []
    assert [p["image"] for p in document["predictions"]] == table.names
    for i, prediction in enumerate(document["predictions"]):
        assert set(prediction["classes"]) == set(prediction["probabilities"]) == set(GROUPS)
        for group, size in GROUPS.items():
            probabilities = np.array(prediction["probabilities"][group])
            assert probabilities.shape == (size,) and abs(probabilities.sum() - 1) < 1e-5
            assert prediction["classes"][group] == int(np.argmax(expected[group][i]))
            assert np.abs(probabilities - expected[group][i]).max() < 1e-6


def test_debug_gives_every_groups_classifier_its_gradient(trained, monkeypatch, capsys):
    monkeypatch.chdir(trained["root"])
    config = dataclasses.replace(trained["config"], mode="debug", run_name="groups_debug")
    for checkpoint in (config.checkpoint, ""):  # the trained model and a fresh one
        run_debug(dataclasses.replace(config, checkpoint=checkpoint))
        out = capsys.readouterr().out
        assert "(the sum of the 4 groups' losses)" in out and "layers flagged" in out
        with open(trained["root"] / "models" / "groups_debug" / "debug" / "layer_stats.csv") as f:
            rows = {row["layer"]: row for row in csv.DictReader(f)}
        for group in GROUPS:  # each group's classifier learns from its own loss
            assert float(rows[f"logits_{group}"]["weight_grad_norm"]) > 0, group
            assert rows[f"logits_{group}"]["shape"] == "8x10"
        assert rows["group_logits"]["shape"] == "8x40" and float(rows["group_logits"]["grad_std"]) > 0


@pytest.fixture(scope="module")
def converted(trained):
    """run_convert of the trained groups run to every format (onnx when tf2onnx and onnxruntime load)."""
    formats = tuple(f for f in EXPORTERS if f != "onnx" or onnx_packages_load())
    config = dataclasses.replace(trained["config"], mode="convert", formats=formats, parity_images=0,
                                 calibration_images=8)
    cwd = os.getcwd()
    os.chdir(trained["root"])
    try:
        run_convert(config)
    finally:
        os.chdir(cwd)
    export = trained["root"] / "models" / "groups" / "export"
    return {"dir": export, "formats": formats, "parity": json.loads((export / "parity.json").read_text())}


def test_savedmodel_returns_each_groups_softmax_by_name(trained, converted):
    loaded = tf.saved_model.load(str(converted["dir"] / "savedmodel"))
    images = tf.constant(np.clip(np.round(trained["pixels"]), 0, 255).astype(np.uint8))  # already at the size
    outputs = loaded.signatures["serving_default"](images=images)
    assert set(outputs) == set(GROUPS)
    for group, size in GROUPS.items():
        assert outputs[group].shape == (len(images), size)
    keras_outputs = trained["model"].predict_on_batch(tf.cast(images, tf.float32))
    for group in GROUPS:
        reference = tf.nn.softmax(keras_outputs[group]).numpy()
        assert np.abs(outputs[group].numpy() - reference).max() < TOLERANCE, group
    with open(trained["table"].images[0], "rb") as f:
        from_bytes = loaded.signatures["serve_image_bytes"](image_bytes=tf.constant([f.read()]))
    assert set(from_bytes) == set(GROUPS)
    metadata = loaded.signatures["metadata"]()
    assert [name.decode() for name in metadata["groups"].numpy()] == list(GROUPS)
    assert metadata["classes"].numpy().tolist() == list(GROUPS.values())
    info = json.loads((converted["dir"] / "metadata.json").read_text())
    assert info["groups"] == GROUPS and "class_names" not in info and "thresholds" not in info


def test_every_format_is_compared_per_group(trained, converted):
    parity = converted["parity"]
    rows = {"savedmodel (uint8)", "savedmodel (bytes)", *(f for f in converted["formats"] if f != "savedmodel")}
    assert set(parity["formats"]) == rows and parity["not_measured"] == {}
    assert parity["images"] == len(trained["table"]) and parity["groups"] == GROUPS
    for name, row in parity["formats"].items():
        assert set(row["groups"]) == set(GROUPS), name
        assert row["max_abs_diff"] == max(g["max_abs_diff"] for g in row["groups"].values())
        if name in QUANTIZED_FORMATS:
            assert row["bar"].startswith("accuracy drop") and "accuracy_drop_points" in row
        else:
            assert row["meets_bar"] and row["class_agreement"] == 1.0, name
    for name in ("keras", "savedmodel (uint8)", "savedmodel (bytes)"):
        assert parity["formats"][name]["max_abs_diff"] < TOLERANCE, name
    text = (converted["dir"] / "parity.md").read_text()
    assert "| format | size (MiB) | max abs prob. diff | class agreement | accuracy |" in text
    assert "| tflite_int8 |" in text


def test_tflite_and_onnx_name_each_groups_output(converted):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(converted["dir"] / "model_float32.tflite"))
    assert sorted(interpreter.get_signature_list()["serving_default"]["outputs"]) == sorted(GROUPS)
    if "onnx" in converted["formats"]:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(converted["dir"] / "model.onnx"),
                                               providers=["CPUExecutionProvider"])
        assert sorted(output.name for output in session.get_outputs()) == sorted(GROUPS)
