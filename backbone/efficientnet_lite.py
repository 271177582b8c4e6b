"""EfficientNet-Lite0: EfficientNet-B0 made for integer and mobile accelerators, as one Keras builder.

Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks" (ICML),
gives B0's mobile inverted bottlenecks (MBConv); EfficientNet-Lite (TensorFlow TPU repository,
models/official/efficientnet/lite, 2020) removes what quantises or runs badly on such hardware:
no squeeze-and-excitation, ReLU6 instead of swish, and a stem and head whose widths do not scale.
Lite0 is the width-1.0, depth-1.0 member: the stem (3x3 convolution, stride 2, 32 channels), 16
MBConv blocks in seven stages, and the head (1x1 convolution to 1280 channels). An MBConv block is

    expand 1x1 (x6; none in the first stage) -> BN -> ReLU6 -> depthwise k x k (stride s) -> BN
    -> ReLU6 -> project 1x1 -> BN (no activation) [-> + input, when stride 1 and channels equal]

Every convolution is bias-free and pads as TensorFlow's "same" (a stride-2 layer on an even input
pads one pixel after and none before), as the network was trained in TensorFlow; BatchNorm has
TensorFlow's epsilon 1e-3 and momentum 0.99. Its ImageNet weights expect (x - 127) / 128 on [0,
255] pixels (the "centered" normalisation, the registry's default for it); they are converted from
the published checkpoint by backbone/efficientnet_lite_weights.py. The width is fixed:
`backbone_width` is left aside with a note, as for the fixed-width keras.applications models.

Layer names: "efficientnet_lite0_stem_conv", "..._stem_bn", "..._stem_relu"; per block
`<prefix>` = "efficientnet_lite0_b{n}" (n = 1..16, the checkpoint's `_blocks.{n - 1}`):
`<prefix>_expand_conv`, `_expand_bn`, `_expand_relu` (not in block 1), `_dw_conv`, `_dw_bn`,
`_dw_relu`, `_project_conv`, `_project_bn`, `_add` (where the block has its skip connection); then
"efficientnet_lite0_head_conv", "..._head_bn", "..._head_relu".
"""

from keras import layers

from backbone.applications import note_fixed_width
from backbone.resnet import BATCH_NORM

NAME = "efficientnet_lite0"
BN_EPSILON = 1e-3  # TensorFlow's EfficientNet; the checkpoint's statistics were trained with it
BN_MOMENTUM = 0.99
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# The seven stages of Lite0 (EfficientNet-B0's): (blocks, kernel, stride of the first block, expansion, channels)
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
          (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))


def block_layout():
    """(prefix, kernel, strides, expansion, input channels, output channels) of each of the 16 blocks, in order."""
    layout, inputs = [], STEM_CHANNELS
    for blocks, kernel, strides, expansion, outputs in STAGES:
        for index in range(blocks):
            layout.append((f"{NAME}_b{len(layout) + 1}", kernel, strides if index == 0 else 1, expansion, inputs,
                           outputs))
            inputs = outputs
    return layout


def efficientnet_lite0(inputs, width=1.0):
    """Builds EfficientNet-Lite0 on `inputs` and returns its last feature map (1280 channels, stride 32).

    Args:
        inputs: KerasTensor. Normalised images [batch, height, width, 3] ((x - 127) / 128 for the
            ImageNet weights).
        width: float. Not applied: Lite0 has a fixed width, and another value is left aside with a note.
    """
    note_fixed_width(NAME, width)
    x = _conv_bn_relu(inputs, STEM_CHANNELS, 3, 2, f"{NAME}_stem")
    for prefix, kernel, strides, expansion, in_channels, out_channels in block_layout():
        x = _mbconv(x, kernel, strides, expansion, in_channels, out_channels, prefix)
    return _conv_bn_relu(x, HEAD_CHANNELS, 1, 1, f"{NAME}_head")


def _bn(x, name):
    return BATCH_NORM(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)(x)


def _conv_bn_relu(x, filters, kernel, strides, prefix):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{prefix}_conv")(x)
    return layers.ReLU(6.0, name=f"{prefix}_relu")(_bn(x, f"{prefix}_bn"))


def _mbconv(x, kernel, strides, expansion, in_channels, out_channels, prefix):
    """One mobile inverted bottleneck without squeeze-and-excitation (module docstring)."""
    y = x
    if expansion != 1:
        y = _conv_bn_relu(y, in_channels * expansion, 1, 1, f"{prefix}_expand")
    y = layers.DepthwiseConv2D(kernel, strides=strides, padding="same", use_bias=False, name=f"{prefix}_dw_conv")(y)
    y = layers.ReLU(6.0, name=f"{prefix}_dw_relu")(_bn(y, f"{prefix}_dw_bn"))
    y = layers.Conv2D(out_channels, 1, use_bias=False, name=f"{prefix}_project_conv")(y)
    y = _bn(y, f"{prefix}_project_bn")
    if strides == 1 and in_channels == out_channels:
        y = layers.Add(name=f"{prefix}_add")([x, y])
    return y
