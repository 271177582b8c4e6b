"""Network slimming in MixNet-18 (backbone/mixnet.py): the output channels of each block's conv1.

A block is conv1 -> BN -> ReLU -> mixed depthwise parts (each with its BN) -> + shortcut. The
depthwise parts act on each channel alone, so a channel removed from conv1 is removed from its
part too; the block's `ChannelScatter` puts the kept channels back among the block's unpruned
width and fills each removed one with a constant, so the residual sum and the next block keep
their widths. The constant is what the removed channel gave there: ReLU(beta of bn1), about its
output when its gamma is near 0, through the depthwise kernel (its sum, away from the image
border) and the part's BatchNorm. With gamma and beta 0 that is the part BatchNorm's output for
a zero input, beta - gamma * moving_mean / sqrt(moving_variance + epsilon), and the pruned block
computes exactly what the unpruned one did.
"""

import re

import numpy as np

from backbone.mixnet import MIX_KERNELS, mix_split
from multi_label.slimming.channels import Prunable, kept_set, positions

BLOCK_LAYER = re.compile(r"^(?P<block>.+_s\d+_b\d+)_(?P<part>conv1|bn1|mix(?P<k>\d)(?:_bn)?)$")


def prunable(model):
    """The `Prunable` convolutions of a MixNet model (each block's conv1), in layer order."""
    return [Prunable(layer.name, f"{layer.name[:-len('conv1')]}bn1", 1) for layer in model.layers
            if BLOCK_LAYER.match(layer.name) and layer.name.endswith("_conv1")]


def part_range(width, kernel):
    """(first, end) of the unpruned channels of a block of `width` that the depthwise part `kernel` convolves."""
    stops = np.cumsum([0, *mix_split(width)])
    index = MIX_KERNELS.index(kernel)
    return int(stops[index]), int(stops[index + 1])


def channel_sets(name, plan, widths):
    """(output channels, None, None) of a layer under `plan`; a depthwise part's are numbered within the part."""
    match = BLOCK_LAYER.match(name)
    conv = f"{match['block']}_conv1" if match else None
    if conv not in widths:
        return None, None, None
    kept = kept_set(plan, widths, conv)
    if match["k"] is None:  # conv1 or bn1
        return kept, None, None
    first, end = part_range(widths[conv], int(match["k"]))
    return kept[(kept >= first) & (kept < end)] - first, None, None


def finish(original, thin, current_plan, plan, widths):
    """Sets each pruned block's scatter constant of the channels removed now (module docstring)."""
    for conv, width in widths.items():
        block = conv[:-len("_conv1")]
        current, kept = kept_set(current_plan, widths, conv), kept_set(plan, widths, conv)
        removed = np.setdiff1d(current, kept)
        if not len(removed):
            continue
        bn1 = original.get_layer(f"{block}_bn1")
        inputs = np.maximum(bn1.beta.numpy()[positions(current, removed)], 0.0)
        scatter = thin.get_layer(f"{block}_scatter")
        constant = scatter.constant.numpy()
        for channel, value in zip(removed, inputs):
            kernel = next(k for k in MIX_KERNELS if part_range(width, k)[0] <= channel < part_range(width, k)[1])
            part_channels, _, _ = channel_sets(f"{block}_mix{kernel}", current_plan, widths)
            j = positions(part_channels, [channel - part_range(width, kernel)[0]])[0]
            depthwise = original.get_layer(f"{block}_mix{kernel}").kernel.numpy()
            bn = original.get_layer(f"{block}_mix{kernel}_bn")
            z = value * depthwise[:, :, j, 0].sum()
            constant[channel] = (bn.gamma.numpy()[j] * (z - bn.moving_mean.numpy()[j])
                                 / np.sqrt(bn.moving_variance.numpy()[j] + bn.epsilon) + bn.beta.numpy()[j])
        scatter.constant.assign(constant)
