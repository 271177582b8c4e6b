"""Runs every exported format on the same test images and compares it with the Keras model.

Each runner loads a file with its own runtime (tf.saved_model, the TFLite interpreter, ONNX
Runtime), not with project code, so the report checks what a deployment will run.
"""

import json
import os
import warnings

import numpy as np
import tensorflow as tf

from dataset.pipeline import DecodeReport, decode_image, make_dataset
from multi_label.evaluation.inference import sigmoid
from multi_label.evaluation.metrics import binarize, mean_average_precision
from multi_label.export.files import make_readable
from multi_label.trained_run import load_checkpoint
from utils.atomic import write_text

BATCH = 32
# Post-training quantisation in TensorFlow's own terms: float16 rounds the weights to half precision
# (11 significant bits), so its probabilities move by up to ~1e-3 and it is judged like int8, by
# its mAP drop. The full-precision formats must reproduce Keras to FLOAT_TOLERANCE.
QUANTIZED_FORMATS = ("tflite_float16", "tflite_dynamic_int8", "tflite_int8")
FLOAT_TOLERANCE = 1e-4  # largest probability difference of a full-precision format
MAX_MAP_DROP_POINTS = 1.0  # mAP points a quantised format may lose


class KerasRunner:
    """The exported `.keras` file: float pixels [N, S, S, 3] -> probabilities."""

    def __init__(self, path):
        self.model = load_checkpoint(path)

    def __call__(self, pixels, image_bytes=None):
        return sigmoid(self.model.predict_on_batch(pixels))


class SavedModelRunner:
    """The SavedModel: the decoded uint8 images (`serving_default`) or the file bytes (`serve_image_bytes`)."""

    def __init__(self, path, signature="serving_default"):
        self.loaded = tf.saved_model.load(path)  # kept: the signature needs its variables alive
        self.signature = self.loaded.signatures[signature]
        self.name = signature

    def __call__(self, pixels, image_bytes=None):
        if self.name == "serve_image_bytes":
            return self.signature(image_bytes=tf.constant(image_bytes))["probabilities"].numpy()
        if image_bytes is None:  # pixels already at the model's size (the benchmark)
            images = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
            return self.signature(images=tf.constant(images))["probabilities"].numpy()
        images = [decode_image(data) for data in image_bytes]
        if len({tuple(image.shape) for image in images}) == 1:
            return self.signature(images=tf.stack(images))["probabilities"].numpy()
        return np.concatenate([self.signature(images=image[None])["probabilities"].numpy() for image in images])


class TFLiteRunner:
    """A .tflite file: float pixels [N, S, S, 3] -> probabilities, quantising the input when it is integer."""

    def __init__(self, path, num_threads=None):
        with warnings.catch_warnings():  # tf.lite.Interpreter announces its move to ai_edge_litert
            warnings.simplefilter("ignore")
            self.interpreter = tf.lite.Interpreter(model_path=path, num_threads=num_threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch = None

    def __call__(self, pixels, image_bytes=None):
        pixels = np.asarray(pixels, np.float32)
        if self.batch != len(pixels):
            self.interpreter.resize_tensor_input(self.input["index"], list(pixels.shape))
            self.interpreter.allocate_tensors()
            self.batch = len(pixels)
        self.interpreter.set_tensor(self.input["index"], quantize(pixels, self.input))
        self.interpreter.invoke()
        return dequantize(self.interpreter.get_tensor(self.output["index"]), self.output)


class OnnxRunner:
    """A .onnx file through ONNX Runtime: float pixels -> probabilities."""

    def __init__(self, path, num_threads=None):
        import onnxruntime  # optional, like tf2onnx
        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, pixels, image_bytes=None):
        return self.session.run(None, {self.input_name: np.asarray(pixels, np.float32)})[0]


def quantize(values, details):
    """Float values to a TFLite input's integer type with its scale and zero point (or unchanged)."""
    dtype = details["dtype"]
    if not np.issubdtype(dtype, np.integer):
        return values.astype(dtype)
    scale, zero_point = details["quantization"]
    limits = np.iinfo(dtype)
    return np.clip(np.round(values / scale + zero_point), limits.min, limits.max).astype(dtype)


def dequantize(values, details):
    scale, zero_point = details["quantization"]
    if not np.issubdtype(values.dtype, np.integer) or scale == 0:
        return values.astype(np.float32)
    return (values.astype(np.float32) - zero_point) * scale


def load_runners(written, num_threads=None):
    """{row name: runner} for the files of `written` ({format: path}); a missing runtime is skipped with a note.

    Returns:
        (dict, dict). The runners and {row name: why it has no runner}.
    """
    runners, missing = {}, {}
    for name, path in written.items():
        if name == "keras":
            runners[name] = KerasRunner(path)
        elif name == "savedmodel":
            runners["savedmodel (uint8)"] = SavedModelRunner(path, "serving_default")
            runners["savedmodel (bytes)"] = SavedModelRunner(path, "serve_image_bytes")
        elif name.startswith("tflite"):
            runners[name] = TFLiteRunner(path, num_threads)
        elif name == "onnx":
            try:
                runners[name] = OnnxRunner(path, num_threads)
            except ImportError:
                missing[name] = "onnxruntime is not installed (pip install onnxruntime)"
    return runners, missing


def parity_report(model, written, table, pipeline, thresholds, export_dir, images=0):
    """Compares each written format with `model` on test images; writes parity.json and parity.md.

    Args:
        model: keras.Model. The Keras model the formats were exported from.
        written: dict[str, str]. {format: path}, as `export_formats` returns.
        table: LabelTable. The test split.
        pipeline: PipelineSettings. How the images are read, as for evaluation.
        thresholds: array-like. Float [C], the exported thresholds.
        export_dir: str. Where the report goes.
        images: int. The first this many test images (`parity_images`); 0: all of them.

    Returns:
        dict. The report: per format the largest probability difference, top-1 and label-set
        agreement with Keras, mAP and, for quantised formats, the mAP drop in points.
    """
    count = len(table) if images == 0 else min(images, len(table))
    paths, labels = table.images[:count], table.labels[:count]
    runners, missing = load_runners(written)
    print(f"Parity: {len(runners)} runtimes against the Keras model on {count} images of {table.source}")
    report = DecodeReport(paths)
    dataset = make_dataset(paths, labels, pipeline, training=False, batch_size=BATCH, report=report)
    reference, targets, outputs = [], [], {name: [] for name in runners}
    for pixels, y, names in dataset:
        pixels = pixels.numpy()
        image_bytes = [tf.io.read_file(p).numpy() for p in names.numpy()]
        reference.append(sigmoid(model.predict_on_batch(pixels)))
        targets.append(y.numpy())
        for name, run in runners.items():
            outputs[name].append(np.asarray(run(pixels, image_bytes), np.float64))
    reference, targets = np.concatenate(reference), np.concatenate(targets)
    rows = {name: compare(reference, np.concatenate(out), targets, thresholds, name) for name, out in outputs.items()}
    result = {
        "test_labels": table.source, "images": len(targets), "skipped_images": report.skipped(),
        "thresholds": np.asarray(thresholds, np.float64).tolist(),
        "keras_mAP": mean_average_precision(targets, reference).map,
        "formats": rows, "not_measured": missing,
        "files": {name: _size(path) for name, path in written.items()},
    }
    table_text = parity_markdown(result)
    for name, text in [("parity.json", json.dumps(result, indent=2) + "\n"), ("parity.md", table_text)]:
        write_text(os.path.join(export_dir, name), text)
        make_readable(os.path.join(export_dir, name))
    print(table_text)
    print(f"Wrote {os.path.join(export_dir, 'parity.json')}\nWrote {os.path.join(export_dir, 'parity.md')}")
    return result


def compare(reference, probabilities, targets, thresholds, name):
    """One row of the parity report: `probabilities` of a format against the Keras `reference`."""
    same_labels = binarize(reference, thresholds) == binarize(probabilities, thresholds)
    row = {
        "max_abs_diff": float(np.abs(probabilities - reference).max(initial=0.0)),
        "top1_agreement": float(np.mean(probabilities.argmax(1) == reference.argmax(1))),
        "label_agreement": float(np.mean(same_labels.all(axis=1))),
        "mAP": mean_average_precision(targets, probabilities).map,
    }
    if name.split(" ")[0] in QUANTIZED_FORMATS:
        row["mAP_drop_points"] = 100 * (mean_average_precision(targets, reference).map - row["mAP"])
        row["bar"] = f"mAP drop <= {MAX_MAP_DROP_POINTS:g} point"
        row["meets_bar"] = bool(row["mAP_drop_points"] <= MAX_MAP_DROP_POINTS)
    else:
        row["bar"] = f"max diff <= {FLOAT_TOLERANCE:g}, same top-1"
        row["meets_bar"] = bool(row["max_abs_diff"] <= FLOAT_TOLERANCE and row["top1_agreement"] == 1.0)
    return row


def parity_markdown(result):
    """The report as a markdown table."""
    lines = [
        f"Parity against the Keras model on {result['images']} images of {result['test_labels']} "
        f"(Keras mAP {result['keras_mAP']:.4f}). Label agreement: images whose whole label set "
        "(probability >= threshold) matches Keras's. Full-precision formats must reproduce Keras; quantised",
        "ones (float16 weights, int8) are judged by the mAP they lose.",
        "",
        "| format | size (MiB) | max abs prob. diff | top-1 agreement | label agreement | mAP | mAP drop (points) "
        "| bar | meets it |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["formats"].items():
        drop = f"{round(row['mAP_drop_points'], 2) + 0.0:.2f}" if "mAP_drop_points" in row else ""  # no "-0.00"
        size = result["files"][name.split(" ")[0]] / 2**20  # "savedmodel (bytes)" is the savedmodel folder
        lines.append(f"| {name} | {size:.2f} | {row['max_abs_diff']:.2e} | {row['top1_agreement']:.4f} | "
                     f"{row['label_agreement']:.4f} | {row['mAP']:.4f} | {drop} | {row['bar']} | "
                     f"{'yes' if row['meets_bar'] else '**no**'} |")
    for name, why in result["not_measured"].items():
        lines.append(f"| {name} | {result['files'][name] / 2**20:.2f} | not measured: {why} | | | | | | |")
    return "\n".join(lines) + "\n"


def _size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)
    return os.path.getsize(path)
