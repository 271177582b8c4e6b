"""The deployment formats of a trained model and their exporters, one registry: EXPORTERS.

`python run.py mode=convert checkpoint=<path> formats=[...]` (multi_label/tasks/convert.py) writes
into models/<run_name>/export/:

    model.keras                 the Keras model: float pixels [N, H, W, 3] in [0, 255] -> logits
    savedmodel/                 for TF Serving: uint8 images of any size (`serving_default`) or
                                encoded JPEG/PNG bytes (`serve_image_bytes`) -> probabilities and
                                labels; class names and thresholds inside (`metadata`)
    model_float32.tflite        float pixels [N, S, S, 3] in [0, 255] -> probabilities
    model_float16.tflite        the same with float16 weights (half the file)
    model_dynamic_int8.tflite   the same with int8 weights, activations quantised on the fly
    model_int8.tflite           full int8, calibrated on training images: uint8 pixels in
    model.onnx                  as model_float32.tflite, for ONNX Runtime (needs tf2onnx)
    metadata.json               class names, thresholds, image size and center crop, for the files without them
    parity.json, parity.md      each format against the Keras model on the test images

S is the training image_size: only the SavedModel resizes inside (after the run's center_crop, as
the evaluation pipeline does), because the pipeline's antialiased resize has no TFLite or ONNX
kernel; callers of the others crop and resize first.

A `groups` head (one softmax per attribute group) is exported by every format alike, with one
named output per group in place of `probabilities`: `<group>` [N, K], the softmax probabilities
of that group's classes (the SavedModel gives no `labels`: a group's class is its most probable
one). Its `metadata` returns the groups and their class counts instead of classes and thresholds.
"""

import json
import os
import tempfile
from collections.abc import Callable
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf

from dataset.pipeline import center_crop, decode_image, make_dataset, resize, whole_pixels
from multi_label.export.files import atomic_folder, make_readable
from utils.atomic import atomic_path, write_bytes, write_text
from utils.config import ConfigError

ONNX_OPSET = 17  # tf2onnx 1.17 tests opsets 14 to 18
ONNX_HINT = "pip install tf2onnx==1.17.0 onnx onnxruntime (optional), or leave 'onnx' out of formats"


def serving_archive(model, class_names, thresholds, image_size, crop=1.0):
    """The SavedModel's endpoints around the Keras model: resize or decode, sigmoid, thresholds.

    Signatures: `serving_default` takes uint8 images [N, H, W, 3] of any size, `serve_image_bytes`
    encoded images [N] (JPEG, PNG, BMP, GIF; any sizes); both crop and resize as the pipeline does and
    return `probabilities` [N, C] and `labels` [N, C] (the class name where the probability is
    at or above the class's threshold, "" elsewhere: a fixed shape TF Serving can batch).
    `metadata` takes nothing and returns the class names, thresholds, image size and center crop.

    Args:
        model: keras.Model. Float pixels in [0, 255] -> logits.
        class_names: list[str]. One name per output.
        thresholds: array-like. Float [C].
        image_size: int. Side that images are resized to, as in training.
        crop: float. Central fraction of each side kept before the resize (`config.center_crop`).

    Returns:
        keras.export.ExportArchive. Keras's exporter saves the variables its endpoints use (a plain
        tf.Module misses Keras variables: the TFLite converter then finds them uninitialised).
        `archive.track(model)` is left out on purpose: it saves every weight a second time.
    """
    names = tf.constant(list(class_names))
    limits = tf.constant(np.asarray(thresholds, np.float32))

    def classify(pixels):
        probabilities = tf.sigmoid(tf.cast(model(pixels, training=False), tf.float32))
        present = probabilities >= limits  # the rule of multi_label.evaluation.metrics.binarize
        return {"probabilities": probabilities, "labels": tf.where(present, names, tf.constant(""))}

    return image_archive(classify, image_size, crop, {"class_names": names, "thresholds": limits})


def group_serving_archive(model, groups, image_size, crop=1.0):
    """`serving_archive` of a `groups` head: the same inputs; per group `<group>` [N, K] softmax probabilities.

    `metadata` returns `groups` (the names, in label-column order) and `classes` (K of each).

    Args:
        model: keras.Model. Float pixels in [0, 255] -> {group: logits}.
        groups: dict[str, int]. Group -> K, in label-column order.
        image_size: int. Side that images are resized to, as in training.
        crop: float. Central fraction of each side kept before the resize.
    """
    metadata = {"groups": tf.constant(list(groups)), "classes": tf.constant(list(groups.values()), tf.int32)}
    return image_archive(probability_function(model), image_size, crop, metadata)


def image_archive(classify, image_size, crop, metadata):
    """The SavedModel's three endpoints around `classify` (float pixels [N, S, S, 3] -> outputs).

    Args:
        classify: callable. Resized float pixels -> a dict of named outputs.
        image_size: int. S, the side images are resized to.
        crop: float. Central fraction of each side kept before the resize.
        metadata: dict[str, tf.Tensor]. What `metadata` returns, besides the image size and crop.
    """
    import keras

    def pixels(images):  # the pipeline's evaluation pixels: cropped, resized, rounded as the cache keeps them
        return tf.cast(whole_pixels(resize(center_crop(images, crop), image_size)), tf.float32)

    def decode(data):
        return pixels(decode_image(data))

    archive = keras.export.ExportArchive()
    archive.add_endpoint("serving_default", lambda images: classify(pixels(images)),
                         input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")])
    archive.add_endpoint(
        "serve_image_bytes",
        lambda image_bytes: classify(tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec(
            [image_size, image_size, 3], tf.float32))),
        input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    archive.add_endpoint("metadata", lambda: {**metadata, "image_size": tf.constant(image_size, tf.int32),
                                              "center_crop": tf.constant(crop, tf.float32)}, input_signature=[])
    return archive


def probability_archive(model, image_size):
    """A one-endpoint archive: pixels [N, S, S, 3] float32 in [0, 255] -> `probability_function(model)`'s outputs."""
    import keras
    archive = keras.export.ExportArchive()
    archive.add_endpoint("serving_default", probability_function(model), input_signature=[pixel_spec(image_size)])
    return archive


def probability_function(model):
    """Pixels -> {"probabilities": sigmoid [N, C]}, or per group of a `groups` head {group: softmax [N, K]}."""
    def probabilities(pixels):
        logits = model(pixels, training=False)
        if isinstance(logits, dict):
            return {name: tf.nn.softmax(tf.cast(values, tf.float32), axis=-1) for name, values in logits.items()}
        return {"probabilities": tf.sigmoid(tf.cast(logits, tf.float32))}
    return probabilities


def pixel_spec(image_size):
    return tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name="pixels")


def export_keras(path, model, info):
    with atomic_path(path) as tmp:
        model.save(tmp)


def export_savedmodel(path, model, info):
    if info["groups"]:
        archive = group_serving_archive(model, info["groups"], info["image_size"], info["center_crop"])
    else:
        archive = serving_archive(model, info["class_names"], info["thresholds"], info["image_size"],
                                  info["center_crop"])
    with atomic_folder(path) as tmp:
        archive.write_out(tmp, verbose=False)


def tflite_bytes(saved_model, quantization, calibration=None):
    """Converts to a TFLite flatbuffer.

    Args:
        saved_model: str. A folder written by `probability_archive(...).write_out`.
        quantization: str. "float32", "float16" (float16 weights), "dynamic_int8" (int8 weights)
            or "int8" (int8 weights and activations, uint8 input, float32 probabilities out).
        calibration: callable or None. For "int8": returns an iterable of float32 batches
            [1, S, S, 3] of training images.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    _set_quantization(converter, quantization, calibration)
    return converter.convert()


def _set_quantization(converter, quantization, calibration):
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        converter.representative_dataset = lambda: ([batch] for batch in calibration())
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8  # what a camera or decoder gives
        # Float output: an int8 sigmoid has steps of 1/256, the dequantised value keeps the same steps
        # but spares every caller the arithmetic.
        converter.inference_output_type = tf.float32


def export_tflite(quantization):
    def export(path, model, info):
        write_bytes(path, tflite_bytes(info["probability_savedmodel"], quantization, info.get("calibration")))
    return export


def export_onnx(path, model, info):
    tf2onnx = _import_tf2onnx()
    spec = [pixel_spec(info["image_size"])]
    function = tf.function(probability_function(model), input_signature=spec)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=ONNX_OPSET)
    write_bytes(path, proto.SerializeToString())


def _import_tf2onnx():
    try:
        import tf2onnx  # optional: only mode=convert with "onnx" needs it
    except ImportError:
        raise ConfigError(f"formats includes 'onnx', but tf2onnx is not installed; {ONNX_HINT}") from None
    except Exception as error:  # installed but broken (e.g. built against another protobuf or TensorFlow)
        raise ConfigError(f"formats includes 'onnx', but tf2onnx failed to load ({type(error).__name__}: "
                          f"{error}); {ONNX_HINT}") from None
    return tf2onnx


class Format(NamedTuple):
    """One export format: the file (or folder) it writes in the export folder, and how.

    Args:
        file: str. The name in the export folder.
        export: callable. `export(path, model, info)` writes the file; `info` holds class_names,
            thresholds, image_size, center_crop, calibration, groups (None but for a `groups` head)
            and, for TFLite, probability_savedmodel.
        tflite: bool. Converted by the TFLite converter from the probability SavedModel, which
            `export_formats` writes once for all of them.
        calibrated: bool. Needs calibration images (full integer quantisation).
        requires: callable or None. Raises ConfigError when an optional package it needs is missing.
    """

    file: str
    export: Callable
    tflite: bool = False
    calibrated: bool = False
    requires: Optional[Callable] = None


def tflite_format(quantization):
    """The Format of `tflite_bytes(..., quantization)`, written to model_<quantization>.tflite."""
    return Format(f"model_{quantization}.tflite", export_tflite(quantization), tflite=True,
                  calibrated=quantization == "int8")


# The one list of export formats: `formats` in configs.py takes these names.
EXPORTERS = {
    "keras": Format("model.keras", export_keras),
    "savedmodel": Format("savedmodel", export_savedmodel),
    "tflite_float32": tflite_format("float32"),
    "tflite_float16": tflite_format("float16"),
    "tflite_dynamic_int8": tflite_format("dynamic_int8"),
    "tflite_int8": tflite_format("int8"),
    "onnx": Format("model.onnx", export_onnx, requires=_import_tf2onnx),
}
FILES = {name: entry.file for name, entry in EXPORTERS.items()}


def check_formats(formats):
    """Raises ConfigError (one line) for an unknown format or one whose optional package is missing ('onnx')."""
    unknown = [f for f in formats if f not in EXPORTERS]
    if unknown or not formats:
        problem = f"unknown format {unknown[0]!r}" if unknown else "no format"
        raise ConfigError(f"formats={list(formats)!r}: {problem}; expected a non-empty list of {list(EXPORTERS)}")
    for name in formats:
        if EXPORTERS[name].requires is not None:
            EXPORTERS[name].requires()


def export_formats(model, formats, export_dir, class_names, thresholds, image_size, calibration=None, crop=1.0,
                   groups=None):
    """Writes each format into `export_dir` plus metadata.json; returns {format: path}.

    Args:
        model: keras.Model. Float pixels in [0, 255] -> logits ({group: logits} for a `groups` head).
        formats: list[str]. Keys of EXPORTERS.
        export_dir: str. Output folder (created).
        class_names: list[str]. One per class (a `groups` head: the groups).
        thresholds: array-like or None. Float [C]; None for a `groups` head.
        image_size: int. Training image side.
        calibration: callable or None. Needed for "tflite_int8": returns an iterable of float32
            [1, S, S, 3] batches of training images.
        crop: float. The evaluation's center_crop, done inside the SavedModel and named in metadata.json.
        groups: dict[str, int] or None. A `groups` head's groups (group -> K, in label-column order).
    """
    check_formats(formats)
    calibrated = [name for name in formats if EXPORTERS[name].calibrated]
    if calibrated and calibration is None:
        raise ValueError(f"{calibrated[0]} needs calibration images; pass calibration=")
    os.makedirs(export_dir, exist_ok=True)
    info = {"class_names": list(class_names), "image_size": int(image_size), "center_crop": float(crop),
            "calibration": calibration, "groups": dict(groups) if groups else None,
            "thresholds": None if groups else np.asarray(thresholds, np.float64).tolist()}
    written = {}
    with tempfile.TemporaryDirectory(prefix="export-") as scratch:
        if any(EXPORTERS[name].tflite for name in formats):
            # The TFLite converter reads a SavedModel; written once, it serves every TFLite format.
            info["probability_savedmodel"] = scratch
            probability_archive(model, image_size).write_out(scratch, verbose=False)
        for name in formats:
            path = os.path.join(export_dir, EXPORTERS[name].file)
            print(f"Converting to {name} ...", flush=True)
            EXPORTERS[name].export(path, model, info)
            make_readable(path)
            written[name] = path
            print(f"Wrote {path}")
    write_metadata(export_dir, info)
    return written


def write_metadata(export_dir, info):
    """metadata.json: what each file takes and gives, for the formats that do not carry it."""
    described = ("groups",) if info["groups"] else ("class_names", "thresholds")
    metadata = {key: info[key] for key in (*described, "image_size", "center_crop")}
    metadata["inputs"] = {
        "savedmodel": "serving_default: uint8 [N, H, W, 3], any size; serve_image_bytes: string [N], encoded images",
        "tflite, onnx": "float32 pixels [N, S, S, 3] in [0, 255]: the central center_crop of each side, resized "
                        "(bilinear, antialiased) to image_size",
        "tflite_int8": "uint8 pixels [N, S, S, 3], quantised with the input's scale and zero point",
    }
    metadata["outputs"] = ("<group> [N, K] float32 for each group: the softmax probabilities of its classes; its "
                           "class is the most probable" if info["groups"] else
                           "probabilities [N, C] float32 (sigmoid); a class is present at or above its threshold")
    write_text(os.path.join(export_dir, "metadata.json"), json.dumps(metadata, indent=2) + "\n")
    make_readable(os.path.join(export_dir, "metadata.json"))


def calibration_batches(table, pipeline, count, seed):
    """A callable returning float32 batches [1, S, S, 3] of `count` random images of `table`.

    Args:
        table: LabelTable. The training split, whose images calibrate tflite_int8.
        pipeline: PipelineSettings. How the images are read (as for evaluation: no augmentation).
        count: int. Images drawn (`calibration_images`); all of them when the split has fewer.
        seed: int. Seeds the draw.
    """
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(table), min(count, len(table)), replace=False))
    images = [table.images[i] for i in chosen]
    dataset = make_dataset(images, table.labels[chosen], pipeline, training=False, batch_size=1)
    print(f"Calibrating tflite_int8 on {len(images)} images from {table.source}")
    return lambda: (batch.numpy() for batch, _, _ in dataset)
