"""Grouped 2-D convolution on TensorFlow's own kernel, not through XLA.

Keras 3's TensorFlow backend compiles every grouped convolution (`Conv2D(groups > 1)`) with XLA,
on the belief that TensorFlow's CPU kernel for it is broken. TensorFlow 2.21's kernel gives the
same outputs and gradients (tests/test_grouped_conv.py), while the XLA path is pathological on a
CPU: ResNeXt-18 at width 0.5, 64 px, trained at 2.1 images/s through it and at 82 through this
layer (`python benchmarks/bench_train.py --backbone resnext18 --grouped-conv keras|tensorflow`,
BENCHMARKS.md).

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
