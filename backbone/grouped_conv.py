"""Grouped 2-D convolution on TensorFlow's own kernel, not through XLA.

Keras 3's TensorFlow backend compiles every grouped convolution (`Conv2D(groups > 1)`) with XLA,
on the belief that TensorFlow's CPU kernel for it is broken. TensorFlow 2.21's kernel gives the
same outputs and gradients (tests/test_grouped_conv.py), while the XLA path is about 600 times
slower on a CPU: one training step of a 3x3, 128-channel, 32-group convolution at batch 32 and
16x16 took 8.2 s against 13 ms (`python benchmarks/bench_grouped_conv.py`, BENCHMARKS.md). That
made ResNeXt untrainable on a CPU (about 2 images/s for ResNeXt-18 at 64 px).

The layer is `keras.layers.Conv2D` with the same arguments, weights and results; only the
grouped, channels-last case is computed differently. Models saved with Keras's `Conv2D` still
load as they were.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="multi_label")
class GroupedConv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose grouped convolution runs on TensorFlow's kernel (see the module docstring)."""

    def convolution_op(self, inputs, kernel):
        strided_and_dilated = max(self.strides) > 1 and max(self.dilation_rate) > 1  # TF takes one or the other
        if (self.groups == 1 or self.data_format != "channels_last" or strided_and_dilated
                or keras.backend.backend() != "tensorflow"):
            return super().convolution_op(inputs, kernel)
        return tf.nn.convolution(inputs, kernel, strides=list(self.strides), padding=self.padding.upper(),
                                 dilations=list(self.dilation_rate), data_format="NHWC")
