"""ONNX export: `run.py mode=convert formats=[..., "onnx"]` on a trained tiny run, checked in ONNX Runtime.

tf2onnx, onnx and onnxruntime are in requirements-dev.txt, so these tests run wherever the tests do: a
missing package fails here instead of skipping, because the feature is claimed in the README.
"""

import json
import os

import keras
import numpy as np
import onnx
import onnxruntime
import pytest
import tensorflow as tf
from conftest import run_in_process
from tiny_run import tiny_config

from dataset.demo import CLASS_NAMES
from multi_label.export.formats import FILES, ONNX_OPSET
from multi_label.export.parity import FLOAT_TOLERANCE as PARITY_TOLERANCE
from multi_label.model import build_model
from multi_label.tasks.settings import model_settings

FLOAT_TOLERANCE = 1e-4  # the bar: largest probability difference from Keras
RUN = "onnx_tiny"


def pipeline_pixels(paths, size):
    """The evaluation pipeline's input, written out: decoded JPEG, bilinear antialiased resize, float32."""
    images = [tf.io.decode_jpeg(tf.io.read_file(str(path)), channels=3) for path in paths]
    return np.stack([tf.image.resize(image, [size, size], method="bilinear", antialias=True).numpy()
                     for image in images]).astype(np.float32)


def split(data_dir, name):
    """(image paths, labels) of one split of the tiny demo data."""
    rows = [line.split(",") for line in (data_dir / f"{name}.csv").read_text().splitlines()[1:]]
    return [data_dir / row[0] for row in rows], np.array([[int(v) for v in row[1:]] for row in rows])


@pytest.fixture(scope="module")
def converted(data_dir, tmp_path_factory):
    """A tiny model trained for a few epochs on the demo images, converted by run.py mode=convert in process."""
    root = tmp_path_factory.mktemp("onnx")
    config = tiny_config(data_dir, run_name=RUN)
    keras.utils.set_random_seed(0)
    model = build_model(model_settings(config), len(CLASS_NAMES))
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    images, labels = split(data_dir, "train")
    # trained weights and BatchNorm statistics, not the initial ones: what a user exports
    model.fit(pipeline_pixels(images, config.image_size), labels.astype(np.float32), batch_size=8, epochs=4,
              verbose=0)
    run_dir = root / "models" / RUN
    os.makedirs(run_dir)
    model.save(run_dir / "best.keras")
    (run_dir / "classes.json").write_text(json.dumps(CLASS_NAMES))
    settings = [f"{key}={getattr(config, key)!r}" for key in
                ("run_name", "image_size", "backbone_width", "train_labels", "val_labels", "test_labels",
                 "demo_data_dir")]
    status, output = run_in_process(root, "mode=convert", "formats=('keras', 'onnx')", "parity_images=0", *settings)
    return {"status": status, "output": output, "dir": run_dir / "export", "checkpoint": run_dir / "best.keras",
            "images": split(data_dir, "test")[0], "size": config.image_size}


def onnx_probabilities(path, pixels):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: pixels})[0]


@pytest.fixture(scope="module")
def outputs(converted):
    """Keras and ONNX Runtime probabilities on the 12 test images, each in its own runtime."""
    pixels = pipeline_pixels(converted["images"], converted["size"])
    model = keras.saving.load_model(str(converted["checkpoint"]), safe_mode=True, compile=False)
    keras_probabilities = tf.sigmoid(model(pixels, training=False)).numpy()
    return pixels, keras_probabilities, onnx_probabilities(converted["dir"] / FILES["onnx"], pixels)


def test_convert_with_onnx_succeeds(converted):
    assert converted["status"] == 0, converted["output"][-3000:]
    assert f"Wrote models/{RUN}/export/model.onnx" in converted["output"]
    assert (converted["dir"] / "model.onnx").stat().st_size > 10_000


def test_onnx_file_is_a_valid_model_with_a_free_batch(converted):
    model = onnx.load(str(converted["dir"] / "model.onnx"))
    onnx.checker.check_model(model)
    assert [entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")] == [ONNX_OPSET]
    session = onnxruntime.InferenceSession(str(converted["dir"] / "model.onnx"), providers=["CPUExecutionProvider"])
    (source,), (target,) = session.get_inputs(), session.get_outputs()
    assert source.type == "tensor(float)" and source.shape[1:] == [32, 32, 3]
    assert not isinstance(source.shape[0], int)  # any batch size
    assert target.type == "tensor(float)" and target.shape[1:] == [10]


def test_onnx_runtime_matches_keras_on_real_images(outputs):
    _, expected, probabilities = outputs
    assert probabilities.shape == expected.shape == (12, 10)
    assert np.abs(probabilities - expected).max() <= FLOAT_TOLERANCE
    assert (probabilities.argmax(1) == expected.argmax(1)).all()
    # the comparison has something to compare: the trained model's probabilities differ between images
    assert np.ptp(expected, axis=0).max() > 1e-2


def test_onnx_gives_each_image_the_same_answer_alone(converted, outputs):
    pixels, _, batched = outputs
    alone = np.concatenate([onnx_probabilities(converted["dir"] / "model.onnx", pixels[i:i + 1]) for i in range(3)])
    assert np.abs(alone - batched[:3]).max() <= FLOAT_TOLERANCE


def test_parity_check_reports_onnx_within_the_bar(converted, outputs):
    parity = json.loads((converted["dir"] / "parity.json").read_text())
    assert parity["images"] == 12 and parity["not_measured"] == {}
    row = parity["formats"]["onnx"]
    assert PARITY_TOLERANCE <= FLOAT_TOLERANCE and row["bar"] == f"max diff <= {PARITY_TOLERANCE:g}, same top-1"
    assert row["meets_bar"] and row["max_abs_diff"] <= FLOAT_TOLERANCE and row["top1_agreement"] == 1.0
    assert row["label_agreement"] == 1.0 and "mAP_drop_points" not in row
    _, expected, probabilities = outputs  # the report measured what this test measures
    assert row["max_abs_diff"] == pytest.approx(np.abs(probabilities - expected).max(), abs=1e-6)
    assert parity["files"]["onnx"] == (converted["dir"] / "model.onnx").stat().st_size
    lines = [line for line in (converted["dir"] / "parity.md").read_text().splitlines() if line.startswith("| onnx |")]
    assert len(lines) == 1 and lines[0].endswith("| yes |")
    metadata = json.loads((converted["dir"] / "metadata.json").read_text())
    assert metadata["image_size"] == 32 and len(metadata["class_names"]) == 10
