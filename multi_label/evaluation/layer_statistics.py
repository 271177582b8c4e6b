"""Per-layer output and gradient statistics of one batch, to find dead, exploding or non-finite layers.

One batch goes forward in training mode (BatchNorm uses batch statistics, as in training) and the
loss is differentiated with respect to every layer's output and weights (`layer_statistics`).

Flags: `nan/inf` (non-finite outputs or gradients), `dead` (at least 99% of the outputs are 0,
or at least half the channels are 0 for the whole batch), `exploding` (|output| or |gradient|
above EXPLODING), `zero grad` (weights whose gradient is 0 everywhere), `zero gamma` (BatchNorm
with gamma all 0). In a fresh ResNet each residual branch ends in a zero-gamma BatchNorm, so
that branch's layers have zero gradient until the first update: expected, not a fault.
"""

import csv
import io

import keras
import numpy as np
import tensorflow as tf

EXPLODING = 1e4  # |value| above which outputs or gradients are flagged
DEAD_FRACTION = 0.99  # share of zero outputs that flags a layer as dead
DEAD_CHANNELS = 0.5  # share of channels zero on the whole batch that flags a layer as dead
COLUMNS = ["layer", "type", "shape", "out_mean", "out_std", "out_max_abs", "out_zeros", "dead_channels", "out_nan",
           "out_inf", "grad_mean", "grad_std", "grad_max_abs", "grad_zeros", "grad_nan", "grad_inf",
           "weight_norm", "weight_grad_norm", "flags"]


def layer_statistics(model, loss, images, labels):
    """Statistics of every layer's output, output gradient and weight gradient for one batch.

    Args:
        model: keras.Model. A functional model.
        loss: keras.losses.Loss. The training loss.
        images: tf.Tensor. A batch of images.
        labels: tf.Tensor. Its labels [batch, C].

    Returns:
        (list[dict], list[tuple[str, str, np.ndarray]], float). One row per layer (keys COLUMNS),
        the (layer, "activation" | "gradient" | "weight" | "weight_gradient", values) to
        histogram, and the loss.
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)
              and _single_output(layer)]
    probe = keras.Model(model.inputs, [layer.output for layer in layers] + list(model.outputs))
    weights = [w for layer in layers for w in layer.trainable_weights]
    with tf.GradientTape() as tape:
        outputs = probe(images, training=True)
        value = loss(labels, outputs[-1])
        if model.losses:
            value = value + tf.add_n(model.losses)
    gradients = tape.gradient(value, outputs[:-1] + weights, unconnected_gradients=tf.UnconnectedGradients.NONE)
    output_grads = dict(zip([layer.name for layer in layers], gradients[:len(layers)]))
    weight_grads = dict(zip([id(w) for w in weights], gradients[len(layers):]))
    rows, tensors = [], []
    for layer, output in zip(layers, outputs[:-1]):
        out = np.asarray(output, np.float64)
        grad = output_grads[layer.name]
        grad = None if grad is None else np.asarray(grad, np.float64)
        row = {"layer": layer.name, "type": type(layer).__name__, "shape": "x".join(str(d) for d in out.shape)}
        row.update(_stats("out", out))
        row["dead_channels"] = _dead_channels(out)
        row.update(_stats("grad", grad))
        row["weight_norm"] = _norm([np.asarray(w, np.float64) for w in layer.trainable_weights])
        layer_weight_grads = [weight_grads[id(w)] for w in layer.trainable_weights]
        row["weight_grad_norm"] = _norm([np.asarray(g, np.float64) for g in layer_weight_grads if g is not None])
        row["flags"] = " ".join(_flags(layer, row, layer_weight_grads))
        rows.append(row)
        tensors.append((layer.name, "activation", out))
        if grad is not None:
            tensors.append((layer.name, "gradient", grad))
        for w, g in zip(layer.trainable_weights, layer_weight_grads):
            tensors.append((w.path, "weight", np.asarray(w, np.float64)))
            if g is not None:
                tensors.append((w.path, "weight_gradient", np.asarray(g, np.float64)))
    return rows, tensors, float(value)


def first_nonfinite(rows):
    """The layer where NaN/Inf first appear: the first output going forward, else the first
    gradient going backward (gradients flow from the loss to the input); None if all are finite."""
    for row in rows:
        if row["out_nan"] or row["out_inf"]:
            return row["layer"]
    for row in reversed(rows):
        if row["grad_nan"] or row["grad_inf"]:
            return row["layer"]
    return None


def _single_output(layer):
    try:
        return isinstance(layer.output, keras.KerasTensor)
    except (AttributeError, ValueError):  # a layer called more than once has no single output
        return False


def _stats(prefix, values):
    if values is None:  # the loss does not depend on this tensor through a differentiable path
        return {f"{prefix}_{k}": None for k in ("mean", "std", "max_abs", "zeros", "nan", "inf")}
    finite = values[np.isfinite(values)]
    return {
        f"{prefix}_mean": float(finite.mean()) if finite.size else None,
        f"{prefix}_std": float(finite.std()) if finite.size else None,
        f"{prefix}_max_abs": float(np.abs(finite).max()) if finite.size else None,
        f"{prefix}_zeros": float(np.mean(values == 0)) if values.size else None,
        f"{prefix}_nan": int(np.isnan(values).sum()),
        f"{prefix}_inf": int(np.isinf(values).sum()),
    }


def _dead_channels(values):
    """Share of channels (last axis) that are 0 for every image and position of the batch."""
    if values.ndim < 2 or not values.size:
        return None
    return float(np.mean(np.all(values.reshape(-1, values.shape[-1]) == 0, axis=0)))


def _norm(arrays):
    return float(np.sqrt(sum(np.sum(np.square(a)) for a in arrays))) if arrays else None


def _flags(layer, row, weight_grads):
    flags = []
    if row["out_nan"] or row["out_inf"] or row["grad_nan"] or row["grad_inf"]:
        flags.append("nan/inf")
    zero_gamma = (isinstance(layer, keras.layers.BatchNormalization) and layer.gamma is not None
                  and not np.any(np.asarray(layer.gamma)))
    if zero_gamma:
        flags.append("zero gamma")
    elif (row["out_zeros"] or 0) >= DEAD_FRACTION or (row["dead_channels"] or 0) >= DEAD_CHANNELS:
        flags.append("dead")
    if max(row["out_max_abs"] or 0, row["grad_max_abs"] or 0) > EXPLODING:
        flags.append("exploding")
    if weight_grads and all(g is None or not np.any(np.asarray(g)) for g in weight_grads):
        flags.append("zero grad")
    return flags


def rows_csv(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in COLUMNS})
    return out.getvalue()


def format_table(rows):
    """The rows as a fixed-width text table (the CSV has every column)."""
    shown = [("layer", 30), ("type", 19), ("out_mean", 10), ("out_std", 10), ("out_zeros", 10),
             ("dead_channels", 14), ("nan/inf", 8), ("grad_std", 10), ("grad_zeros", 11), ("weight_grad_norm", 17),
             ("flags", 0)]
    lines = ["".join(name.ljust(width) if width else name for name, width in shown)]
    for row in rows:
        row = {**row, "nan/inf": row["out_nan"] + row["out_inf"] + (row["grad_nan"] or 0) + (row["grad_inf"] or 0)}
        cells = []
        for name, width in shown:
            value = row[name]
            text = "-" if value is None else (f"{value:.3g}" if isinstance(value, float) else str(value))
            cells.append(text[:width - 1].ljust(width) if width else text)
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)


def write_histograms(log_dir, tensors):
    """Writes the finite values of each tensor of `layer_statistics` as a TensorBoard histogram (step 0).

    Args:
        log_dir: str. The event file's folder; an older event file there is replaced.
        tensors: list[tuple[str, str, np.ndarray]]. (layer, kind, values), as `layer_statistics` returns.
    """
    from multi_label.evaluation.report import replacing_event_file  # matplotlib, only when writing

    with replacing_event_file(log_dir) as writer, writer.as_default():
        for name, kind, values in tensors:
            finite = values[np.isfinite(values)]
            if finite.size:
                tf.summary.histogram(f"{kind}/{name}", finite, step=0)
