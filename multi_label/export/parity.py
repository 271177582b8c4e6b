"""Runs every exported format on the same test images and compares it with the Keras model.

Each runner loads a file with its own runtime (tf.saved_model, the TFLite interpreter, ONNX
Runtime), not with project code, so the report checks what a deployment will run. A runner
returns probabilities [N, C], or for a `groups` head {group: [N, K]} (softmax per group), and
the report of a groups head compares every group's probabilities and judges quantised formats by
the accuracy they lose (mean over the groups, known labels only) instead of the mAP.
"""

import json
import os
import warnings

import numpy as np
import tensorflow as tf

from dataset.pipeline import DecodeReport, decode_image, make_dataset
from multi_label.evaluation.group_metrics import evaluate_groups
from multi_label.evaluation.inference import output_probabilities
from multi_label.evaluation.metrics import binarize, mean_average_precision
from multi_label.export.files import make_readable
from multi_label.export.float32_copy import compute_dtype_name
from multi_label.trained_run import load_checkpoint
from utils.atomic import write_text

BATCH = 32
# Post-training quantisation in TensorFlow's own terms: float16 rounds the weights to half precision
# (11 significant bits), so its probabilities move by up to ~1e-3 and it is judged like int8, by
# its mAP drop. The full-precision formats must reproduce Keras to FLOAT_TOLERANCE.
QUANTIZED_FORMATS = ("tflite_float16", "tflite_dynamic_int8", "tflite_int8")
FLOAT_TOLERANCE = 1e-4  # largest probability difference of a full-precision format
# A checkpoint trained in mixed precision is exported as its float32 copy (multi_label/export/float32_copy.py);
# the trained model itself is a row too, named TRAINED_PREFIX + its policy, and judged as a quantised format:
# bfloat16 keeps 8 significant bits, so its probabilities move by up to ~1e-2 (4e-3 measured on a tiny run).
TRAINED_PREFIX = "keras_as_trained_"
MAX_MAP_DROP_POINTS = 1.0  # mAP points a quantised format may lose
MAX_ACCURACY_DROP_POINTS = 1.0  # groups head: accuracy points (mean over the groups) a quantised format may lose


class KerasRunner:
    """The exported `.keras` file: float pixels [N, S, S, 3] -> probabilities (softmax per group for a groups head)."""

    def __init__(self, path):
        self.model = load_checkpoint(path)

    def __call__(self, pixels, image_bytes=None):
        return output_probabilities(self.model.predict_on_batch(pixels))


class SavedModelRunner:
    """The SavedModel: the decoded uint8 images (`serving_default`) or the file bytes (`serve_image_bytes`).

    Args:
        path: str. The SavedModel folder.
        signature: str. The endpoint called.
        groups: list[str] or None. A `groups` head's groups, the named outputs returned; None: `probabilities`.
    """

    def __init__(self, path, signature="serving_default", groups=None):
        self.loaded = tf.saved_model.load(path)  # kept: the signature needs its variables alive
        self.signature = self.loaded.signatures[signature]
        self.name = signature
        self.groups = groups

    def __call__(self, pixels, image_bytes=None):
        if self.name == "serve_image_bytes":
            return self._outputs(image_bytes=tf.constant(image_bytes))
        if image_bytes is None:  # pixels already at the model's size (the benchmark)
            images = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
            return self._outputs(images=tf.constant(images))
        images = [decode_image(data) for data in image_bytes]
        if len({tuple(image.shape) for image in images}) == 1:
            return self._outputs(images=tf.stack(images))
        return concatenate([self._outputs(images=image[None]) for image in images])

    def _outputs(self, **inputs):
        outputs = self.signature(**inputs)
        if self.groups:
            return {name: outputs[name].numpy() for name in self.groups}
        return outputs["probabilities"].numpy()


class TFLiteRunner:
    """A .tflite file: float pixels [N, S, S, 3] -> probabilities, quantising the input when it is integer.

    Args:
        path: str. The .tflite file.
        num_threads: int or None. Interpreter threads.
        groups: list[str] or None. A `groups` head's groups: its signature's outputs, read by name.
    """

    def __init__(self, path, num_threads=None, groups=None):
        with warnings.catch_warnings():  # tf.lite.Interpreter announces its move to ai_edge_litert
            warnings.simplefilter("ignore")
            self.interpreter = tf.lite.Interpreter(model_path=path, num_threads=num_threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.batch = None
        self.groups = groups
        if groups:  # several outputs: the signature runner names them (and resizes the input itself)
            self.runner = self.interpreter.get_signature_runner("serving_default")
            self.input = self.runner.get_input_details()["pixels"]
            self.outputs = self.runner.get_output_details()

    def __call__(self, pixels, image_bytes=None):
        pixels = np.asarray(pixels, np.float32)
        if self.groups:
            outputs = self.runner(pixels=quantize(pixels, self.input))
            return {name: dequantize(outputs[name], self.outputs[name]) for name in self.groups}
        if self.batch != len(pixels):
            self.interpreter.resize_tensor_input(self.input["index"], list(pixels.shape))
            self.interpreter.allocate_tensors()
            self.batch = len(pixels)
        self.interpreter.set_tensor(self.input["index"], quantize(pixels, self.input))
        self.interpreter.invoke()
        return dequantize(self.interpreter.get_tensor(self.output["index"]), self.output)


class OnnxRunner:
    """A .onnx file through ONNX Runtime: float pixels -> probabilities (a groups head: its outputs by name)."""

    def __init__(self, path, num_threads=None, groups=None):
        import onnxruntime  # optional, like tf2onnx
        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.groups = groups

    def __call__(self, pixels, image_bytes=None):
        feed = {self.input_name: np.asarray(pixels, np.float32)}
        if self.groups:
            return dict(zip(self.groups, self.session.run(list(self.groups), feed)))
        return self.session.run(None, feed)[0]


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


def load_runners(written, num_threads=None, groups=None):
    """{row name: runner} for the files of `written` ({format: path}); a missing runtime is skipped with a note.

    Args:
        written: dict[str, str]. {format: path}.
        num_threads: int or None. Threads of the TFLite and ONNX runtimes.
        groups: list[str] or None. A `groups` head's groups (the outputs each runner returns).

    Returns:
        (dict, dict). The runners and {row name: why it has no runner}.
    """
    runners, missing = {}, {}
    for name, path in written.items():
        if name == "keras":
            runners[name] = KerasRunner(path)
        elif name == "savedmodel":
            runners["savedmodel (uint8)"] = SavedModelRunner(path, "serving_default", groups)
            runners["savedmodel (bytes)"] = SavedModelRunner(path, "serve_image_bytes", groups)
        elif name.startswith("tflite"):
            runners[name] = TFLiteRunner(path, num_threads, groups)
        elif name == "onnx":
            try:
                runners[name] = OnnxRunner(path, num_threads, groups)
            except ImportError:
                missing[name] = "onnxruntime is not installed (pip install onnxruntime)"
    return runners, missing


def parity_report(model, written, table, pipeline, thresholds, export_dir, images=0, groups=None, trained=None):
    """Compares each written format with `model` on test images; writes parity.json and parity.md.

    Args:
        model: keras.Model. The Keras model the formats were exported from.
        written: dict[str, str]. {format: path}, as `export_formats` returns.
        table: LabelTable. The test split.
        pipeline: PipelineSettings. How the images are read, as for evaluation.
        thresholds: array-like or None. Float [C], the exported thresholds; None for a `groups` head.
        export_dir: str. Where the report goes.
        images: int. The first this many test images (`parity_images`); 0: all of them.
        groups: dict[str, int] or None. A `groups` head's groups (group -> K, in label-column order).
        trained: keras.Model or None. The checkpoint as trained, when it computes in mixed precision and
            `model` is its float32 copy: compared too, as a row named TRAINED_PREFIX + its policy.

    Returns:
        dict. The report: per format the largest probability difference, top-1 and label-set
        agreement with Keras, mAP and, for quantised formats, the mAP drop in points (a groups
        head: the same per group, the class agreement over all groups, accuracy and its drop).
    """
    count = len(table) if images == 0 else min(images, len(table))
    paths, labels = table.images[:count], table.labels[:count]
    runners, missing = load_runners(written, groups=list(groups) if groups else None)
    if trained is not None:
        policy = compute_dtype_name(trained)
        runners[TRAINED_PREFIX + policy] = lambda pixels, image_bytes=None: output_probabilities(
            trained.predict_on_batch(pixels))
    print(f"Parity: {len(runners)} runtimes against the Keras model on {count} images of {table.source}")
    report = DecodeReport(paths)
    dataset = make_dataset(paths, labels, pipeline, training=False, batch_size=BATCH, report=report)
    reference, targets, outputs = [], [], {name: [] for name in runners}
    for pixels, y, names in dataset:
        pixels = pixels.numpy()
        image_bytes = [tf.io.read_file(p).numpy() for p in names.numpy()]
        reference.append(output_probabilities(model.predict_on_batch(pixels)))
        targets.append(y.numpy())
        for name, run in runners.items():
            outputs[name].append(run(pixels, image_bytes))
    reference, targets = concatenate(reference), np.concatenate(targets)
    outputs = {name: concatenate(out) for name, out in outputs.items()}
    result = {"test_labels": table.source, "images": len(targets), "skipped_images": report.skipped()}
    if groups:
        result.update(group_rows(reference, outputs, targets, groups))
    else:
        result.update(thresholds=np.asarray(thresholds, np.float64).tolist(),
                      keras_mAP=mean_average_precision(targets, reference).map,
                      formats={name: compare(reference, out, targets, thresholds, name)
                               for name, out in outputs.items()})
    result.update(not_measured=missing, files={name: _size(path) for name, path in written.items()})
    table_text = group_parity_markdown(result) if groups else parity_markdown(result)
    for name, text in [("parity.json", json.dumps(result, indent=2) + "\n"), ("parity.md", table_text)]:
        write_text(os.path.join(export_dir, name), text)
        make_readable(os.path.join(export_dir, name))
    print(table_text)
    print(f"Wrote {os.path.join(export_dir, 'parity.json')}\nWrote {os.path.join(export_dir, 'parity.md')}")
    return result


def concatenate(parts):
    """Batches of probabilities ([n, C] arrays, or {group: [n, K]} dicts) joined into one, in float64."""
    if isinstance(parts[0], dict):
        return {name: np.concatenate([np.asarray(p[name], np.float64) for p in parts]) for name in parts[0]}
    return np.concatenate([np.asarray(p, np.float64) for p in parts])


def reduced_precision(name):
    """Whether a parity row is judged by what it loses (quantised formats, the mixed-precision model as trained)."""
    return name.split(" ")[0] in QUANTIZED_FORMATS or name.startswith(TRAINED_PREFIX)


def compare(reference, probabilities, targets, thresholds, name):
    """One row of the parity report: `probabilities` of a format against the Keras `reference`."""
    same_labels = binarize(reference, thresholds) == binarize(probabilities, thresholds)
    row = {
        "max_abs_diff": float(np.abs(probabilities - reference).max(initial=0.0)),
        "top1_agreement": float(np.mean(probabilities.argmax(1) == reference.argmax(1))),
        "label_agreement": float(np.mean(same_labels.all(axis=1))),
        "mAP": mean_average_precision(targets, probabilities).map,
    }
    if reduced_precision(name):
        row["mAP_drop_points"] = 100 * (mean_average_precision(targets, reference).map - row["mAP"])
        row["bar"] = f"mAP drop <= {MAX_MAP_DROP_POINTS:g} point"
        row["meets_bar"] = bool(row["mAP_drop_points"] <= MAX_MAP_DROP_POINTS)
    else:
        row["bar"] = f"max diff <= {FLOAT_TOLERANCE:g}, same top-1"
        row["meets_bar"] = bool(row["max_abs_diff"] <= FLOAT_TOLERANCE and row["top1_agreement"] == 1.0)
    return row


def group_rows(reference, outputs, targets, groups):
    """The report's part of a `groups` head: {"groups", "keras_accuracy", "formats": {row name: row}}.

    Args:
        reference: dict[str, np.ndarray]. Keras's probabilities, group -> [N, K].
        outputs: dict[str, dict]. Row name -> the format's probabilities, like `reference`.
        targets: np.ndarray. [N, G] class indices per group, -1 unknown.
        groups: dict[str, int]. Group -> K, in label-column order.
    """
    keras_accuracy = evaluate_groups(targets, reference, groups)["accuracy"]
    return {"groups": dict(groups), "keras_accuracy": keras_accuracy,
            "formats": {name: compare_groups(reference, out, targets, groups, name, keras_accuracy)
                        for name, out in outputs.items()}}


def compare_groups(reference, probabilities, targets, groups, name, keras_accuracy):
    """One row of a groups head's report: every group's probabilities against Keras's.

    `class_agreement` counts the images whose predicted class matches Keras's in every group;
    `groups` holds each group's largest difference, top-1 agreement and accuracy.
    """
    evaluated = evaluate_groups(targets, probabilities, groups)
    same = {g: probabilities[g].argmax(1) == reference[g].argmax(1) for g in groups}
    per_group = {g: {"max_abs_diff": float(np.abs(probabilities[g] - reference[g]).max(initial=0.0)),
                     "top1_agreement": float(np.mean(same[g])),
                     "accuracy": evaluated["groups"][g]["accuracy"]} for g in groups}
    row = {
        "max_abs_diff": max(group["max_abs_diff"] for group in per_group.values()),
        "class_agreement": float(np.mean(np.all([same[g] for g in groups], axis=0))),
        "accuracy": evaluated["accuracy"],
        "groups": per_group,
    }
    if reduced_precision(name):
        known = keras_accuracy is not None and row["accuracy"] is not None
        row["accuracy_drop_points"] = 100 * (keras_accuracy - row["accuracy"]) if known else None
        row["bar"] = f"accuracy drop <= {MAX_ACCURACY_DROP_POINTS:g} point"
        row["meets_bar"] = bool(known and row["accuracy_drop_points"] <= MAX_ACCURACY_DROP_POINTS)
    else:
        row["bar"] = f"max diff <= {FLOAT_TOLERANCE:g}, same classes"
        row["meets_bar"] = bool(row["max_abs_diff"] <= FLOAT_TOLERANCE and row["class_agreement"] == 1.0)
    return row


def parity_markdown(result):
    """The report as a markdown table."""
    intro = [
        f"Parity against the Keras model on {result['images']} images of {result['test_labels']} "
        f"(Keras mAP {result['keras_mAP']:.4f}). Label agreement: images whose whole label set "
        "(probability >= threshold) matches Keras's. Full-precision formats must reproduce Keras; quantised",
        "ones (float16 weights, int8) are judged by the mAP they lose, and so is a mixed-precision checkpoint",
        "as trained (keras_as_trained_<policy>; the formats and the Keras reference are its float32 copy).",
    ]
    columns = [
        ("max abs prob. diff", lambda row: f"{row['max_abs_diff']:.2e}"),
        ("top-1 agreement", lambda row: f"{row['top1_agreement']:.4f}"),
        ("label agreement", lambda row: f"{row['label_agreement']:.4f}"),
        ("mAP", lambda row: f"{row['mAP']:.4f}"),
        ("mAP drop (points)", lambda row: _points(row.get("mAP_drop_points"))),
    ]
    return _markdown(intro, columns, result)


def group_parity_markdown(result):
    """The report of a `groups` head as a markdown table."""
    groups = ", ".join(result["groups"])
    intro = [
        f"Parity against the Keras model on {result['images']} images of {result['test_labels']} "
        f"(Keras accuracy {_figure(result['keras_accuracy'])}: each group's accuracy on its known labels, "
        f"averaged over {groups}).",
        "Class agreement: images whose predicted class matches Keras's in every group; max abs prob. diff: the "
        "largest over all groups. Full-precision formats must reproduce Keras; quantised ones (float16 weights,",
        "int8) are judged by the accuracy they lose.",
    ]
    columns = [
        ("max abs prob. diff", lambda row: f"{row['max_abs_diff']:.2e}"),
        ("class agreement", lambda row: f"{row['class_agreement']:.4f}"),
        ("accuracy", lambda row: _figure(row["accuracy"])),
        ("accuracy drop (points)", lambda row: _points(row.get("accuracy_drop_points"))),
    ]
    return _markdown(intro, columns, result)


def _markdown(intro, columns, result):
    """`intro`, then a table: format, size, one column per (header, cell of a row), the bar and whether it is met."""
    headers = ["format", "size (MiB)", *(header for header, _ in columns), "bar", "meets it"]
    lines = [*intro, "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for name, row in result["formats"].items():
        size = result["files"].get(name.split(" ")[0])  # "savedmodel (bytes)" is the savedmodel folder
        # the model as trained (a mixed-precision checkpoint's row) is no file of the export
        cells = [name, "" if size is None else f"{size / 2**20:.2f}", *(cell(row) for _, cell in columns),
                 row["bar"], "yes" if row["meets_bar"] else "**no**"]
        lines.append("| " + " | ".join(cells) + " |")
    for name, why in result["not_measured"].items():
        size = result["files"][name] / 2**20
        lines.append(f"| {name} | {size:.2f} | not measured: {why} |" + " |" * (len(headers) - 3))
    return "\n".join(lines) + "\n"


def _points(value):
    return "" if value is None else f"{round(value, 2) + 0.0:.2f}"  # + 0.0: no "-0.00"


def _figure(value):
    return "n/a" if value is None else f"{value:.4f}"


def _size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)
    return os.path.getsize(path)
