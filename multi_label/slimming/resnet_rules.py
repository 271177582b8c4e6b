"""Network slimming in the ResNet family (backbone/resnet.py): the inner convolutions of each block.

A block's last convolution feeds the residual sum, whose width every block of the stage shares,
so its channels stay; the ones before it may go: `<block>_conv1` of a basic block, `<block>_conv1`
and `<block>_conv2` of a bottleneck, ranked by `<block>_bn1` and `<block>_bn2`. This holds for the
pre-activation blocks too: their BatchNorm before conv1 normalises the residual stream and is not
pruned, but conv1 (and a bottleneck's conv2) is followed by its own BatchNorm and ReLU as in the
plain blocks. In a ResNeXt bottleneck conv2 is grouped, and conv1's channels are its input
groups: both keep the same number of channels in each of the `cardinality` groups.

A removed channel still gave the next convolution a constant, about ReLU(beta) when its gamma is
near 0; it is folded into the moving mean of the BatchNorm after that convolution, exact away
from the image border (where a 3x3 convolution's zero padding sees less of it). A pre-activation
block's last convolution has no BatchNorm after it: there the constant is dropped, as in the paper.
"""

import re

import numpy as np

from multi_label.slimming.channels import Prunable, group_coordinates, kept_set, positions

BLOCK_LAYER = re.compile(r"^(?P<block>.+_s\d+_b\d+)_(?P<kind>conv|bn)(?P<k>\d)$")


def prunable(model):
    """The `Prunable` convolutions of a ResNet-family model, in layer order."""
    names = {layer.name for layer in model.layers}
    found = []
    for layer in model.layers:
        match = BLOCK_LAYER.match(layer.name)
        if not match or match["kind"] != "conv" or f"{match['block']}_conv{int(match['k']) + 1}" not in names:
            continue  # not a block's convolution, or its last one
        block, k = match["block"], int(match["k"])
        bottleneck = f"{block}_conv3" in names
        groups = model.get_layer(f"{block}_conv2").groups if bottleneck else 1
        found.append(Prunable(layer.name, f"{block}_bn{k}", groups))
    return found


def channel_sets(name, plan, widths):
    """(output channels, input channels, input width) of a layer under `plan`; None for an axis never pruned."""
    match = BLOCK_LAYER.match(name)
    if not match:
        return None, None, None
    block, k = match["block"], int(match["k"])
    own, before = f"{block}_conv{k}", f"{block}_conv{k - 1}"
    out = kept_set(plan, widths, own) if own in widths else None
    if match["kind"] == "bn" or before not in widths:
        return out, None, None
    return out, kept_set(plan, widths, before), widths[before]


def finish(original, thin, current_plan, plan, widths):
    """Folds each removed channel's constant ReLU(beta) into the BatchNorm after the convolution it fed."""
    names = {layer.name for layer in thin.layers}
    for conv in widths:
        block, k = BLOCK_LAYER.match(conv)["block"], int(BLOCK_LAYER.match(conv)["k"])
        current, kept = kept_set(current_plan, widths, conv), kept_set(plan, widths, conv)
        removed = np.setdiff1d(current, kept)
        after = f"{block}_bn{k + 1}"
        if not len(removed) or after not in names:
            continue
        beta = original.get_layer(f"{block}_bn{k}").beta.numpy()
        constant = np.maximum(beta[positions(current, removed)], 0.0)
        consumer = original.get_layer(f"{block}_conv{k + 1}")
        shift = _constant_response(consumer.kernel.numpy(), consumer.groups, current, removed, constant, widths[conv])
        out_current, _, _ = channel_sets(after, current_plan, widths)
        out_kept, _, _ = channel_sets(after, plan, widths)
        if out_current is not None:
            shift = shift[positions(out_current, out_kept)]
        bn = thin.get_layer(after)
        bn.moving_mean.assign(bn.moving_mean.numpy() - shift)


def _constant_response(kernel, groups, current, removed, constant, width):
    """What constant inputs on the `removed` channels add to each output of a convolution, away from borders.

    Args:
        kernel: np.ndarray. [kh, kw, inputs per group, outputs] of the convolution in the current network.
        groups: int. Its groups.
        current: np.ndarray. Its input channels (unpruned indices) in the current network.
        removed: np.ndarray. The input channels removed, a subset of `current`.
        constant: np.ndarray. The constant each removed channel gave.
        width: int. The unpruned input channels.
    """
    summed = kernel.sum(axis=(0, 1))  # [inputs per group, outputs]
    per_group = summed.shape[1] // groups
    group, row = group_coordinates(current, removed, width, groups)
    shift = np.zeros(summed.shape[1])
    for g, r, c in zip(group, row, constant):
        shift[g * per_group:(g + 1) * per_group] += c * summed[r, g * per_group:(g + 1) * per_group]
    return shift
