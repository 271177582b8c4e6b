"""mode=convert: every format loads in its own runtime, without project code, and agrees with Keras."""

import dataclasses
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT
from PIL import Image

from configs import Config
from dataset.labels import write_labels_csv
from multi_label.evaluation.thresholds import save_thresholds
from multi_label.export.formats import EXPORTERS, FILES, check_formats, serving_archive
from multi_label.export.parity import QUANTIZED_FORMATS
from multi_label.model import build_model
from multi_label.tasks.convert import run_convert
from multi_label.tasks.settings import model_settings
from utils.config import ConfigError, load_config

CLASSES = ["cat", "dog", "car", "tree"]
THRESHOLDS = [0.3, 0.5, 0.6, 0.9]
SIZE = 32
FLOAT_TOLERANCE = 1e-4  # the bar for float formats


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny untrained model saved as a run's checkpoint, converted by run_convert to every TFLite format."""
    root = tmp_path_factory.mktemp("convert")
    rng = np.random.default_rng(0)
    names = []
    for i in range(6):  # sizes differ from SIZE, so the SavedModel's resize is exercised
        pixels = rng.integers(0, 256, (40 + 4 * i, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"img{i}.jpg", quality=95)
        names.append(f"img{i}.jpg")
    labels = rng.integers(0, 2, (6, len(CLASSES)))
    labels[0], labels[1] = 1, 0  # every class has a positive and a negative
    write_labels_csv(str(root / "labels.csv"), names, CLASSES, labels)
    config = dataclasses.replace(
        Config(), backbone_width=0.125, image_size=SIZE, run_name="tiny", train_labels=str(root / "labels.csv"),
        val_labels="", test_labels=str(root / "labels.csv"), checkpoint=str(root / "models/tiny/best.keras"),
        formats=tuple(f for f in EXPORTERS if f != "onnx"), parity_images=0, calibration_images=6)
    model = build_model(model_settings(config), len(CLASSES))
    os.makedirs(root / "models/tiny")
    model.save(config.checkpoint)
    (root / "models/tiny/classes.json").write_text(json.dumps(CLASSES))
    save_thresholds(str(root / "models/tiny/thresholds.json"), CLASSES, THRESHOLDS)
    cwd = os.getcwd()
    os.chdir(root)  # the export goes to models/<run_name>/export/ under the working folder
    try:
        run_convert(config)
    finally:
        os.chdir(cwd)
    images = [np.asarray(Image.open(root / name).convert("RGB")) for name in names]
    return {"root": root, "dir": root / "models/tiny/export", "model": model, "images": images,
            "paths": [root / name for name in names]}


def keras_probabilities(model, image):
    """What the Keras model gives for one uint8 image after the pipeline's resize, rounded to whole pixels."""
    pixels = np.clip(np.round(tf.image.resize(image, [SIZE, SIZE], method="bilinear", antialias=True)), 0, 255)[None]
    return tf.sigmoid(model(pixels, training=False)).numpy()[0]


def tflite_probabilities(path, pixels):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(source["index"], list(pixels.shape))
    interpreter.allocate_tensors()
    if source["dtype"] == np.uint8:
        scale, zero_point = source["quantization"]
        pixels = np.clip(np.round(pixels / scale + zero_point), 0, 255)
    interpreter.set_tensor(source["index"], pixels.astype(source["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(target["index"]), source, target


def resized(images):
    return np.stack([tf.image.resize(i, [SIZE, SIZE], method="bilinear", antialias=True).numpy() for i in images])


def test_every_file_and_the_parity_report_are_written(exported):
    for name, file in FILES.items():
        assert (exported["dir"] / file).exists() == (name != "onnx"), file
    parity = json.loads((exported["dir"] / "parity.json").read_text())
    assert parity["images"] == 6 and set(parity["formats"]) == {
        "keras", "savedmodel (uint8)", "savedmodel (bytes)", "tflite_float32", "tflite_float16",
        "tflite_dynamic_int8", "tflite_int8"}
    for name in ["keras", "savedmodel (uint8)", "savedmodel (bytes)", "tflite_float32"]:
        assert parity["formats"][name]["max_abs_diff"] < FLOAT_TOLERANCE, name
    for name in ["tflite_float16", "tflite_dynamic_int8", "tflite_int8"]:  # quantised: judged by mAP drop
        assert "mAP_drop_points" in parity["formats"][name] and parity["formats"][name]["bar"].startswith("mAP drop")
    assert all(parity["formats"][name]["meets_bar"] for name in ["keras", "savedmodel (uint8)", "tflite_float32"])
    assert "| tflite_int8 |" in (exported["dir"] / "parity.md").read_text()
    metadata = json.loads((exported["dir"] / "metadata.json").read_text())
    assert (metadata["class_names"], metadata["thresholds"], metadata["image_size"]) == (CLASSES, THRESHOLDS, SIZE)
    assert not [p for p in os.listdir(exported["dir"]) if p.startswith(".")]  # no temporary files left


def test_savedmodel_with_plain_tensorflow_matches_keras(exported):
    loaded = tf.saved_model.load(str(exported["dir"] / "savedmodel"))
    image = exported["images"][2]  # 48x48, resized to 32 inside
    out = loaded.signatures["serving_default"](images=tf.constant(image[None]))
    expected = keras_probabilities(exported["model"], image)
    probabilities = out["probabilities"].numpy()[0]
    assert np.abs(probabilities - expected).max() < FLOAT_TOLERANCE
    assert probabilities.argmax() == expected.argmax()
    wanted = [name if p >= t else "" for name, p, t in zip(CLASSES, probabilities, THRESHOLDS)]
    assert [s.decode() for s in out["labels"].numpy()[0]] == wanted
    metadata = loaded.signatures["metadata"]()
    assert [s.decode() for s in metadata["class_names"].numpy()] == CLASSES
    assert np.allclose(metadata["thresholds"].numpy(), THRESHOLDS) and int(metadata["image_size"]) == SIZE


def test_savedmodel_takes_encoded_jpeg_bytes(exported):
    loaded = tf.saved_model.load(str(exported["dir"] / "savedmodel"))
    data = [path.read_bytes() for path in exported["paths"][:3]]  # three sizes in one batch
    out = loaded.signatures["serve_image_bytes"](image_bytes=tf.constant(data))["probabilities"].numpy()
    decoded = [tf.io.decode_jpeg(d, channels=3) for d in data]
    expected = np.stack([keras_probabilities(exported["model"], image) for image in decoded])
    assert out.shape == (3, len(CLASSES))
    assert np.abs(out - expected).max() < FLOAT_TOLERANCE
    assert (out.argmax(1) == expected.argmax(1)).all()


@pytest.mark.parametrize("name, tolerance", [("tflite_float32", FLOAT_TOLERANCE), ("tflite_float16", 1e-2)])
def test_tflite_float_formats_match_keras(exported, name, tolerance):
    pixels = resized(exported["images"]).astype(np.float32)
    probabilities, source, _ = tflite_probabilities(exported["dir"] / FILES[name], pixels)
    expected = tf.sigmoid(exported["model"](pixels, training=False)).numpy()
    assert source["dtype"] == np.float32 and probabilities.shape == (6, len(CLASSES))
    assert np.abs(probabilities - expected).max() < tolerance
    if name == "tflite_float32":
        assert (probabilities.argmax(1) == expected.argmax(1)).all()


@pytest.mark.parametrize("name", ["tflite_dynamic_int8", "tflite_int8"])
def test_int8_formats_run(exported, name):
    pixels = resized(exported["images"][:3]).astype(np.float32)
    probabilities, source, target = tflite_probabilities(exported["dir"] / FILES[name], pixels)
    assert source["dtype"] == (np.uint8 if name == "tflite_int8" else np.float32)
    assert target["dtype"] == np.float32 and probabilities.shape == (3, len(CLASSES))
    assert np.isfinite(probabilities).all() and (0 <= probabilities).all() and (probabilities <= 1).all()


def test_bad_format_name_is_one_clear_line(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "mode=convert", "formats=['tflite_int9']"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: formats=['tflite_int9'] is out of range; expected a non-empty list from keras, savedmodel, "
        "tflite_float32, tflite_float16, tflite_dynamic_int8, tflite_int8, onnx"]
    with pytest.raises(ConfigError, match="unknown format 'bogus'"):
        check_formats(["keras", "bogus"])


def test_config_accepts_every_format_and_only_those():
    assert load_config([f"formats={tuple(EXPORTERS)!r}"]).formats == tuple(EXPORTERS)
    for bad in [(), ("keras", "tflite"), ("savedmodel ",)]:
        with pytest.raises(ConfigError, match="^formats="):
            load_config([f"formats={bad!r}"])


def test_one_registry_of_formats():
    assert FILES == {name: entry.file for name, entry in EXPORTERS.items()}
    assert len(set(FILES.values())) == len(FILES)  # no two formats write the same file
    assert set(QUANTIZED_FORMATS) <= set(EXPORTERS)  # parity judges real formats by their mAP drop
    assert [name for name, entry in EXPORTERS.items() if entry.calibrated] == ["tflite_int8"]


def test_checkpoint_of_another_head_stops_before_reading_labels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    groups = dataclasses.replace(Config(), backbone_width=0.125, image_size=SIZE, head="groups",
                                 groups={"a": 2, "b": 3}, train_labels="missing.csv", test_labels="missing.csv",
                                 checkpoint="run/best.keras")
    os.makedirs("run")
    build_model(model_settings(groups), len(groups.groups)).save("run/best.keras")
    # settings that do not say so: the checkpoint is named before the (missing) label files are read
    with pytest.raises(ConfigError, match=r"^checkpoint='run/best.keras' has a head='groups' \(one softmax per "
                                          r"group\), not the sigmoid outputs of head='linear'"):
        run_convert(dataclasses.replace(groups, head="linear", groups=None))
    with pytest.raises(ConfigError, match=r"^checkpoint='run/best.keras' has the groups \{'a': 2, 'b': 3\}, but "
                                          r"groups=\{'a': 2, 'b': 4\}; expected the groups it was trained with$"):
        run_convert(dataclasses.replace(groups, groups={"a": 2, "b": 4}))
    # and the other way round: a sigmoid checkpoint with head='groups'
    build_model(model_settings(Config(backbone_width=0.125)), 4).save("run/best.keras")
    with pytest.raises(ConfigError, match=r"^checkpoint='run/best.keras' has one sigmoid output per class \(4\), "
                                          r"not head='groups'"):
        run_convert(groups)


def test_onnx_without_tf2onnx_names_the_fix():
    try:
        import tf2onnx  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="tf2onnx is not installed; pip install tf2onnx"):
            check_formats(["onnx"])
    else:
        check_formats(["onnx"])


def test_onnx_with_a_broken_tf2onnx_names_the_error_and_the_fix(tmp_path, monkeypatch):
    # installed but failing to load (another protobuf or TensorFlow): one line, not a traceback
    (tmp_path / "tf2onnx.py").write_text("raise RuntimeError('built against another protobuf')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tf2onnx", raising=False)
    with pytest.raises(ConfigError, match=r"tf2onnx failed to load \(RuntimeError: built against another protobuf\); "
                                          r"pip install tf2onnx"):
        check_formats(["onnx"])


def test_savedmodel_center_crop_matches_the_pipeline(exported, tmp_path):
    assert json.loads((exported["dir"] / "metadata.json").read_text())["center_crop"] == 1.0  # off by default
    archive = serving_archive(exported["model"], CLASSES, THRESHOLDS, SIZE, crop=0.5)
    archive.write_out(str(tmp_path / "sm"), verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    image = exported["images"][2]  # 48x48: the pipeline keeps rows and columns 12..35
    out = loaded.signatures["serving_default"](images=tf.constant(image[None]))["probabilities"].numpy()[0]
    assert np.abs(out - keras_probabilities(exported["model"], image[12:36, 12:36])).max() < FLOAT_TOLERANCE
    assert float(loaded.signatures["metadata"]()["center_crop"]) == 0.5
