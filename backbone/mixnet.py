"""MixNet-18: the ResNet-18 layout with a mixed depthwise convolution (MixConv) in every block.

Tan & Le 2019, "MixConv: Mixed Depthwise Convolutional Kernels" (BMVC): one depthwise convolution
with several kernel sizes, each on its own share of the channels, so that one layer sees small
and large patterns at the cost of a depthwise convolution. MixNet-18 is the original project's
network: a 3x3 stride-2 stem convolution, BatchNorm, ReLU and a 3x3/2 max pooling, then four
stages of two basic blocks at 64, 128, 256 and 512 channels (stride 2 on the first block of
stages 2-4). A block of C channels is

    conv1 3x3 (stride s) -> BN -> ReLU -> split the C channels 8:4:2:2 -> depthwise 3x3, 5x5, 7x7,
    9x9 (stride 1, "same", each with its own BN) -> concatenate -> + shortcut -> ReLU

with an identity shortcut, or a 1x1 convolution of stride s and BN where the shape changes. The
depthwise BatchNorms start with gamma 0, so every residual branch starts as identity, as the last
BN of backbone/resnet.py's blocks; the convolutions, padding and BatchNorm are that module's.

Channels at `width`: every layer of P published channels has C = max(4, round(P * width))
(Python's round, as backbone/resnet.py; 4 so that each kernel size has a channel). The split
(`mix_split`) gives the 5x5, 7x7 and 9x9 parts max(1, round(C * share / 16)) channels for shares
4, 2, 2, and the 3x3 part the rest, so the parts sum to C: 64 -> 32, 16, 8, 8; 16 -> 8, 4, 2, 2.

Layer names (found again by their prefix, `multi_label.model.backbone_layers`): "mixnet18_stem_*",
and per block `<prefix>` = "mixnet18_s{stage}_b{index}": `<prefix>_conv1`, `<prefix>_bn1`,
`<prefix>_split` (not there when only one part is left), `<prefix>_mix{k}` and `<prefix>_mix{k}_bn`
for k = 3, 5, 7, 9, `<prefix>_concat`, `<prefix>_down_conv`, `<prefix>_down_bn`, `<prefix>_add`.

Pruned blocks (network slimming): `channel_plan` maps a block's conv1 name, e.g.
"mixnet18_s2_b1_conv1", to the sorted indices of the conv1 output channels kept, indices into that
block's unpruned C. In a planned block conv1 has len(kept) filters; each depthwise part keeps the
kept indices inside its range of the unpruned split (`mix_split`, parts in kernel order 3, 5, 7, 9),
in the same order, and a part left with none is omitted; `<prefix>_scatter` (`ChannelScatter`)
then puts the kept channels back at their indices among C and fills every pruned channel with its
entry of the non-trainable weight "constant" [C] (zeros when built; the pruner writes there what
the depthwise BN outputs for a zero input: beta - gamma * moving_mean / sqrt(moving_variance + eps)),
before the shortcut is added. So the block's output, the shortcut and the next block keep their
widths; weights of a kept channel copy over at its position among the kept (conv1 kernel [..., j],
its BN [j], its depthwise part's kernel and BN at the channel's place in that part). Blocks not in
the plan, and the whole network without a plan, have no scatter layer.
"""

import keras
import numpy as np
from keras import layers, ops

from backbone.resnet import _bn, _conv, _shortcut, _stem_pool

NAME = "mixnet18"
STAGE_CHANNELS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = 2
MIX_KERNELS = (3, 5, 7, 9)
MIX_SHARES = (8, 4, 2, 2)  # of 16: the channels of each kernel size


def channels(published, width):
    """A layer's channel count at `width`: max(4, round(published * width)), one channel per kernel size at least."""
    return max(len(MIX_KERNELS), int(round(published * width)))


def mix_split(channels):
    """The channels of the 3x3, 5x5, 7x7 and 9x9 parts of a block of `channels` (>= 4): 8:4:2:2, summing to it.

    Args:
        channels: int. The block's channels.
    """
    larger = [max(1, int(round(channels * share / sum(MIX_SHARES)))) for share in MIX_SHARES[1:]]
    return [channels - sum(larger), *larger]


def block_layout(width=1.0):
    """(prefix, channels, strides) of each block, in order: the names and widths a `channel_plan` refers to.

    Args:
        width: float. The backbone width.
    """
    return [(f"{NAME}_s{stage + 1}_b{index + 1}", channels(published, width), 2 if stage and not index else 1)
            for stage, published in enumerate(STAGE_CHANNELS) for index in range(BLOCKS_PER_STAGE)]


def mixnet18(inputs, width=1.0, channel_plan=None):
    """Builds MixNet-18 on `inputs` and returns the last feature map (stride 32).

    Args:
        inputs: KerasTensor. Normalised images [batch, height, width, 3].
        width: float. Multiplier of every layer's channel count (see the module docstring).
        channel_plan: dict[str, list[int]] or None. Pruned blocks: a block's conv1 layer name ->
            the sorted indices of its kept conv1 output channels (module docstring); None: no pruning.
    """
    layout = block_layout(width)
    plan = check_channel_plan(channel_plan or {}, layout)
    x = _conv(inputs, channels(STAGE_CHANNELS[0], width), 3, 2, f"{NAME}_stem_conv")
    x = layers.ReLU(name=f"{NAME}_stem_relu")(_bn(x, f"{NAME}_stem_bn"))
    x = _stem_pool(x, NAME, preact=False)
    for prefix, filters, strides in layout:
        x = _mix_block(x, filters, strides, prefix, plan.get(f"{prefix}_conv1"))
    return x


def check_channel_plan(plan, layout):
    """The plan with its index lists as lists of int; ValueError names a bad entry and what was expected."""
    widths = {f"{prefix}_conv1": filters for prefix, filters, _ in layout}
    checked = {}
    for name, kept in plan.items():
        if name not in widths:
            raise ValueError(f"channel_plan: {name!r} is no block of {NAME}; expected conv1 names of {sorted(widths)}")
        checked[name] = checked_indices(kept, widths[name], f"channel_plan[{name!r}]")
    return checked


def checked_indices(indices, channels, what):
    """`indices` as a list of int; ValueError unless they are sorted, distinct, in [0, channels) and not none."""
    indices = [int(i) for i in indices]
    if not indices or indices != sorted(set(indices)) or indices[0] < 0 or indices[-1] >= channels:
        raise ValueError(f"{what}={indices}: expected sorted, distinct channel indices in [0, {channels}), "
                         "at least one")
    return indices


def kept_parts(filters, kept):
    """(kernel size, kept channels) of each depthwise part that keeps any, for a block of `filters` channels.

    Args:
        filters: int. The block's unpruned channels.
        kept: list[int] or None. Sorted kept channel indices; None: all.
    """
    stops = np.cumsum(mix_split(filters))
    counts = np.bincount(np.searchsorted(stops, np.arange(filters) if kept is None else kept, side="right"),
                         minlength=len(MIX_KERNELS))
    return [(kernel, int(count)) for kernel, count in zip(MIX_KERNELS, counts) if count]


def _mix_block(x, filters, strides, name, kept):
    shortcut = _shortcut(x, x, filters, strides, name, preact=False)
    y = _conv(x, filters if kept is None else len(kept), 3, strides, f"{name}_conv1")
    y = layers.ReLU(name=f"{name}_relu1")(_bn(y, f"{name}_bn1"))
    y = _mixed_depthwise(y, kept_parts(filters, kept), name)
    if kept is not None:
        y = ChannelScatter(kept, filters, name=f"{name}_scatter")(y)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))


def _mixed_depthwise(y, parts, name):
    pieces = ChannelSplit([count for _, count in parts], name=f"{name}_split")(y) if len(parts) > 1 else [y]
    outputs = [_bn(layers.DepthwiseConv2D(kernel, padding="same", use_bias=False, name=f"{name}_mix{kernel}")(piece),
                   f"{name}_mix{kernel}_bn", zero_gamma=True)
               for (kernel, _), piece in zip(parts, pieces)]
    return layers.Concatenate(name=f"{name}_concat")(outputs) if len(outputs) > 1 else outputs[0]


@keras.saving.register_keras_serializable(package="multi_label")
class ChannelSplit(layers.Layer):
    """Splits the channels (last axis) into consecutive parts: the inputs of a mixed depthwise convolution.

    Args:
        sizes: list[int]. Channels of each part, in order; they sum to the input's channels.
    """

    def __init__(self, sizes, **kwargs):
        super().__init__(**kwargs)
        self.sizes = [int(size) for size in sizes]

    def build(self, input_shape):
        if input_shape[-1] != sum(self.sizes):
            raise ValueError(f"{self.name}: parts {self.sizes} sum to {sum(self.sizes)}, not to the input's "
                             f"{input_shape[-1]} channels")

    def call(self, inputs):
        return ops.split(inputs, np.cumsum(self.sizes)[:-1].tolist(), axis=-1)

    def compute_output_shape(self, input_shape):
        return [(*input_shape[:-1], size) for size in self.sizes]

    def get_config(self):
        return {**super().get_config(), "sizes": self.sizes}


@keras.saving.register_keras_serializable(package="multi_label")
class ChannelScatter(layers.Layer):
    """Puts the kept channels of a pruned block back at their indices; every other channel holds its constant.

    The output has `channels` channels: channel `indices[j]` is input channel j, any channel not in
    `indices` is the non-trainable weight `constant` there (zeros until the pruner sets it).

    Args:
        indices: list[int]. Sorted output channel of each input channel.
        channels: int. Output channels (the unpruned block width).
    """

    def __init__(self, indices, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.indices = checked_indices(indices, self.channels, f"{self.name}: indices")
        # output channel c reads input channel j where indices[j] == c, else the constant at len(indices) + c
        source = len(self.indices) + np.arange(self.channels)
        source[self.indices] = np.arange(len(self.indices))
        self._source = source.tolist()

    def build(self, input_shape):
        if input_shape[-1] != len(self.indices):
            raise ValueError(f"{self.name}: {len(self.indices)} indices for an input of {input_shape[-1]} channels")
        self.constant = self.add_weight(name="constant", shape=(self.channels,), initializer="zeros",
                                        trainable=False)

    def call(self, inputs):
        constant = ops.broadcast_to(ops.cast(self.constant, inputs.dtype), (*ops.shape(inputs)[:-1], self.channels))
        return ops.take(ops.concatenate([inputs, constant], axis=-1), self._source, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.channels)

    def get_config(self):
        return {**super().get_config(), "indices": self.indices, "channels": self.channels}
