"""Copies a network's weights into its thinner version: every weight sliced to the channels it keeps.

Each layer of the thin network takes its namesake's weights, cut along the axes its family's
rules name (`families.py`): a convolution's kernel along its output channels and its input
channels (within each group of a grouped convolution), a depthwise kernel and a BatchNorm's four
vectors along their channels. Every other weight (the stem, the residual path, the head) is copied
as it is and must have the same shape. Then the family sets what the removed channels leave
behind (`Family.finish`).
"""

import keras
import numpy as np

from multi_label.slimming.channels import group_coordinates, positions


def copy_weights(original, thin, family, current_plan, plan, widths):
    """Sets every weight of `thin` from `original`, sliced to the channels `plan` keeps.

    Args:
        original: keras.Model. The network being pruned, built with `current_plan`.
        thin: keras.Model. The same network built with `plan`.
        family: Family. The rules of their backbone.
        current_plan: dict[str, list[int]]. The original's plan entries ({} when unpruned).
        plan: dict[str, list[int]]. The thin network's, a subset of the original's channels.
        widths: dict[str, int]. Every prunable convolution -> its unpruned channels.
    """
    names = {layer.name for layer in original.layers}
    for layer in thin.layers:
        if not layer.weights or layer.name not in names:
            continue  # a layer only a pruned network has (MixNet's scatter) is set by `family.finish`
        source = original.get_layer(layer.name)
        current = family.channel_sets(layer.name, current_plan, widths)
        kept = family.channel_sets(layer.name, plan, widths)
        if [w.name for w in source.weights] != [w.name for w in layer.weights]:
            raise ValueError(f"layer {layer.name!r} holds {[w.name for w in source.weights]} in the network being "
                             f"pruned, {[w.name for w in layer.weights]} in the thin one")
        for there, here in zip(source.weights, layer.weights):
            value = sliced(keras.ops.convert_to_numpy(there), there.name, source, current, kept)
            if value.shape != tuple(here.shape):
                raise ValueError(f"weight {here.path!r}: {value.shape} after slicing, {tuple(here.shape)} in the "
                                 "thin network")
            here.assign(value)
    family.finish(original, thin, current_plan, plan, widths)


def sliced(value, name, layer, current, kept):
    """One weight of `layer` cut to the kept channels.

    Args:
        value: np.ndarray. The weight in the network being pruned.
        name: str. Its name ("kernel", "gamma", ...).
        layer: keras.layers.Layer. Its layer there (a depthwise convolution, a convolution's `groups`).
        current: tuple. (output channels, input channels, input width) there (`Family.channel_sets`).
        kept: tuple. The same in the thin network.
    """
    (out_now, in_now, in_width), (out_kept, in_kept, _) = current, kept
    depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
    if out_now is not None:
        axis = 2 if depthwise and name == "kernel" else value.ndim - 1  # a depthwise kernel: [kh, kw, channels, 1]
        value = np.take(value, positions(out_now, out_kept), axis=axis)
    if in_now is not None and name == "kernel" and not depthwise:
        value = _sliced_inputs(value, getattr(layer, "groups", 1), in_now, in_kept, in_width)
    return value


def _sliced_inputs(kernel, groups, current, kept, width):
    """A [kh, kw, inputs per group, outputs] kernel cut to the kept input channels, group by group."""
    if groups == 1:
        return np.take(kernel, positions(current, kept), axis=2)
    group, row = group_coordinates(current, kept, width, groups)
    per_group = kernel.shape[3] // groups
    parts = [kernel[:, :, row[group == g], g * per_group:(g + 1) * per_group] for g in range(groups)]
    return np.concatenate(parts, axis=3)
