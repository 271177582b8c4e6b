"""ResNet, ResNeXt and pre-activation ResNet (He et al. 2016; Xie et al. 2017) as one implementation.

ResNeXt is a ResNet setting (`cardinality`, `base_width`), and so is the pre-activation ResNet
(`preact`, He et al. 2016, "Identity Mappings in Deep Residual Networks", ECCV): not separate
classes. Every layer name starts with the registry name, which is how the backbone's layers are
found again (fine-tuning, weight transfer). Convolutions
carry no bias: the BatchNorm that follows has its own shift, so a bias would be a redundant
parameter that weight decay pulls around for nothing.

Strided convolutions and the stem's max pooling pad symmetrically, as torchvision does (a 7x7
stem convolution by 3 pixels, a 3x3 by 1, the 3x3 pooling by 1): Keras's "same" with stride 2 on
an even input pads nothing before and one pixel after, which shifts every feature by a pixel
against torchvision's, so ported weights (backbone/torchvision_weights.py) would see another
image. The output sizes are those of "same" at any input size.
"""

import numpy as np
from keras import layers

from backbone.fused_batch_norm import FusedBatchNormalization
from backbone.grouped_conv import GroupedConv2D

BN_EPSILON = 1e-5  # PyTorch's default, so ported weights behave the same
BN_MOMENTUM = 0.9
# Keras's results on TensorFlow's fused kernel: a third faster training on a CPU (BENCHMARKS.md).
# A benchmark may set it to keras.layers.BatchNormalization to compare.
BATCH_NORM = FusedBatchNormalization


def resnet(inputs, block, blocks_per_stage, cardinality=1, base_width=64, width=1.0, preact=False, name="resnet",
           channel_plan=None):
    """Builds a ResNet feature extractor on `inputs` and returns the last feature map (stride 32).

    Args:
        inputs: KerasTensor. Normalised images [batch, height, width, 3].
        block: str. "basic" (two 3x3 convs; ResNet-18/34) or "bottleneck" (1x1-3x3-1x1; ResNet-50+).
        blocks_per_stage: list[int]. Number of blocks in each of the four stages.
        cardinality: int. Groups of the 3x3 convolution (1 = ResNet, 32 = ResNeXt-50 32x4d).
        base_width: int. Width of each group at the first stage (64 = ResNet, 4 = ResNeXt 32x4d).
        width: float. Multiplier of every layer's channel count, for small test models.
        preact: bool. Pre-activation blocks: BatchNorm and ReLU before each convolution, a
            shortcut path free of any activation, one BatchNorm-ReLU after the last block, and a
            stem of convolution and max pooling only (as Keras's ResNetV2 and timm's ResNetV2).
        name: str. Prefix of layer names.
        channel_plan: dict[str, list[int]] or None. A pruned network (network slimming,
            multi_label/slimming/): a block's inner convolution name (`<block>_conv1` of a basic
            block, `<block>_conv1` or `<block>_conv2` of a bottleneck) -> the sorted indices of the
            output channels kept, into its unpruned filters; it gets len(kept) filters. A grouped
            convolution keeps the same count in each group. None: no pruning.
    """
    channels = lambda c: max(cardinality, int(round(c * width / cardinality)) * cardinality)
    plan = dict(channel_plan or {})
    planned = lambda conv, filters, groups=1: _planned_filters(plan, conv, filters, groups)
    x = _conv(inputs, channels(64), 7, 2, f"{name}_stem_conv")
    if not preact:  # a pre-activation stem leaves BN-ReLU to the first block
        x = layers.ReLU(name=f"{name}_stem_relu")(_bn(x, f"{name}_stem_bn"))
    x = _stem_pool(x, name, preact)
    for stage, count in enumerate(blocks_per_stage):
        planes = 64 * 2 ** stage
        for index in range(count):
            strides = 2 if stage > 0 and index == 0 else 1
            prefix = f"{name}_s{stage + 1}_b{index + 1}"
            if block == "basic":
                x = _basic_block(x, channels(planes), strides, prefix, preact,
                                 planned(f"{prefix}_conv1", channels(planes)))
            else:
                # conv1's channels are conv2's input groups: both keep the same count per group
                inner = channels(int(planes * base_width / 64) * cardinality)
                inner = [planned(f"{prefix}_conv{k}", inner, cardinality) for k in (1, 2)]
                x = _bottleneck_block(x, inner, channels(planes * 4), strides, cardinality, prefix, preact)
    if plan:
        raise ValueError(f"channel_plan names {sorted(plan)}, which are no prunable convolutions of {name} (the "
                         "inner convolutions of its blocks, <block>_conv1 and, in a bottleneck, <block>_conv2)")
    if preact:  # the residual sum of the last block has had no normalisation yet
        x = layers.ReLU(name=f"{name}_post_relu")(_bn(x, f"{name}_post_bn"))
    return x


def _planned_filters(plan, conv, filters, groups):
    """The filters of `conv` under the plan (its entry is taken out of `plan`); ValueError for a bad entry.

    A grouped convolution's channels are `groups` consecutive runs of filters / groups; its kept
    channels must be the same count in each run, so that it stays a grouped convolution.
    """
    if conv not in plan:
        return filters
    kept = plan.pop(conv)
    size = filters // groups
    if (not kept or list(kept) != sorted(set(kept)) or min(kept) < 0 or max(kept) >= filters
            or len(set(np.bincount(np.asarray(kept, int) // size, minlength=groups))) != 1):
        each = f", the same count in each of its {groups} groups of {size}" if groups > 1 else ""
        raise ValueError(f"channel_plan[{conv!r}]={list(kept)}: expected sorted, distinct channel indices in "
                         f"[0, {filters}){each}, at least one")
    return len(kept)


def _conv(x, filters, kernel, strides, name, groups=1):
    """A convolution without bias; a strided one is padded by kernel // 2 on every side, as torchvision's."""
    if strides > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    conv = GroupedConv2D if groups > 1 else layers.Conv2D  # Keras's grouped path is XLA: slow on CPU
    return conv(filters, kernel, strides=strides, padding="same" if strides == 1 else "valid", groups=groups,
                use_bias=False, name=name)(x)


def _stem_pool(x, name, preact):
    # Zero padding gives torchvision's result (it pads with -inf) only on a post-ReLU input (>= 0).
    # A pre-activation stem has no ReLU before its pooling, so a padded zero would win the max
    # over negative border values: it keeps "same", which pads nothing the max can pick (with an
    # even input, one pixel after and none before).
    if preact:
        return layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_stem_pool")(x)
    x = layers.ZeroPadding2D(1, name=f"{name}_stem_pool_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name=f"{name}_stem_pool")(x)


def _bn(x, name, zero_gamma=False):
    # Zero-initialised gamma on each block's last BN starts every residual branch as identity,
    # which trains deep ResNets more stably (Goyal et al. 2017).
    return BATCH_NORM(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name,
        gamma_initializer="zeros" if zero_gamma else "ones")(x)


def _shortcut(x, activated, filters, strides, name, preact):
    # Pre-activation: an identity shortcut carries the raw sum, a projection reads the activated
    # input (He et al. 2016, fig. 4) and has no BatchNorm of its own.
    if strides == 1 and x.shape[-1] == filters:
        return x
    shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"{name}_down_conv")(activated)
    return shortcut if preact else _bn(shortcut, f"{name}_down_bn")


def _pre_activation(x, name, preact):
    return layers.ReLU(name=f"{name}_preact_relu")(_bn(x, f"{name}_preact_bn")) if preact else x


def _last_conv(y, filters, kernel, name, preact):
    # Pre-activation blocks have no BN after their last conv; zero-initialising that conv
    # instead starts the residual branch as identity (timm's zero_init_last).
    return layers.Conv2D(filters, kernel, padding="same" if kernel > 1 else "valid", use_bias=False, name=name,
                         kernel_initializer="zeros" if preact else "glorot_uniform")(y)


def _residual_sum(y, shortcut, last_bn, name, preact):
    if preact:  # the sum stays un-normalised: the next block's pre-activation takes care of it
        return layers.Add(name=f"{name}_add")([y, shortcut])
    y = _bn(y, last_bn, zero_gamma=True)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, shortcut]))


def _basic_block(x, filters, strides, name, preact=False, inner=None):
    # `inner`: the filters of conv1 (pruned), else `filters`
    activated = _pre_activation(x, name, preact)
    shortcut = _shortcut(x, activated, filters, strides, name, preact)
    y = _conv(activated, inner or filters, 3, strides, f"{name}_conv1")
    y = layers.ReLU(name=f"{name}_relu1")(_bn(y, f"{name}_bn1"))
    y = _last_conv(y, filters, 3, f"{name}_conv2", preact)
    return _residual_sum(y, shortcut, f"{name}_bn2", name, preact)


def _bottleneck_block(x, inner, filters, strides, cardinality, name, preact=False):
    # `inner`: the filters of conv1 and conv2, one int for both or [conv1, conv2] (pruned)
    inner = [inner, inner] if isinstance(inner, int) else inner
    activated = _pre_activation(x, name, preact)
    shortcut = _shortcut(x, activated, filters, strides, name, preact)
    y = layers.Conv2D(inner[0], 1, use_bias=False, name=f"{name}_conv1")(activated)
    y = layers.ReLU(name=f"{name}_relu1")(_bn(y, f"{name}_bn1"))
    # Stride on the 3x3 (ResNet v1.5, as torchvision): better accuracy than striding the 1x1.
    y = _conv(y, inner[1], 3, strides, f"{name}_conv2", groups=cardinality)
    y = layers.ReLU(name=f"{name}_relu2")(_bn(y, f"{name}_bn2"))
    y = _last_conv(y, filters, 1, f"{name}_conv3", preact)
    return _residual_sum(y, shortcut, f"{name}_bn3", name, preact)


# name -> (block, blocks per stage, other `resnet` arguments): the published networks.
ARCHITECTURES = {
    "resnet18": ("basic", [2, 2, 2, 2], {}),
    "resnet34": ("basic", [3, 4, 6, 3], {}),
    "resnet50": ("bottleneck", [3, 4, 6, 3], {}),
    "resnet101": ("bottleneck", [3, 4, 23, 3], {}),
    "resnet152": ("bottleneck", [3, 8, 36, 3], {}),
    # The original project's small ResNeXt: basic-block depth with bottleneck grouped blocks.
    "resnext18": ("bottleneck", [2, 2, 2, 2], {"cardinality": 32, "base_width": 4}),
    "resnext50_32x4d": ("bottleneck", [3, 4, 6, 3], {"cardinality": 32, "base_width": 4}),
    "resnext101_32x8d": ("bottleneck", [3, 4, 23, 3], {"cardinality": 32, "base_width": 8}),
    "preact_resnet18": ("basic", [2, 2, 2, 2], {"preact": True}),
    "preact_resnet34": ("basic", [3, 4, 6, 3], {"preact": True}),
    "preact_resnet50": ("bottleneck", [3, 4, 6, 3], {"preact": True}),
    "preact_resnet101": ("bottleneck", [3, 4, 23, 3], {"preact": True}),
}


def builder(name):
    """The builder `fn(inputs, width=1.0, channel_plan=None) -> feature map` of an `ARCHITECTURES` entry."""
    block, blocks_per_stage, options = ARCHITECTURES[name]

    def build(inputs, width=1.0, channel_plan=None):
        return resnet(inputs, block, blocks_per_stage, width=width, name=name, channel_plan=channel_plan, **options)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{name}: `resnet` with block={block!r}, blocks per stage {blocks_per_stage}, {options}."
    return build


# One builder per network, made once: the backbone registry and the pruning rules compare them.
BUILDERS = {name: builder(name) for name in ARCHITECTURES}
