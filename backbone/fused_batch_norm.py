"""BatchNormalization on TensorFlow's fused kernel: one op forward and one op backward.

Keras 3 normalises with separate operations (mean, variance, then scale and shift), and each is a
pass over the activation in memory, in the forward pass and again in the backward pass. On a CPU a
ResNet's batch norms are memory-bound, so these passes cost about as much as the convolutions
(BENCHMARKS.md, "Where the training time goes"). TensorFlow's `FusedBatchNormV3` does the same
arithmetic in one pass each way, and oneDNN has kernels for it.

The arithmetic is Keras's: batch statistics in training with the biased variance, the moving
averages updated with Keras's `momentum`, statistics in float32 under mixed precision. Where the
fused kernel does not apply (another axis than the last, an input that is not 4-D, a mask,
`synchronized=True`, renorm) the layer is Keras's own.

Under a distribution strategy each replica updates the moving averages from its own part of the
batch. Keras creates them without an aggregation, so the replicas' updates are not combined and
the saved averages are those of the first replica's images only; here they are averaged over
the replicas: the moving mean is then the whole batch's, the moving variance the mean of the
parts' variances (tests/test_distribute.py). Normalising each part with its own statistics, as
every strategy does without `synchronized=True`, is what still differs from one device.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="multi_label")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` with the same arguments and results, computed by the fused kernel."""

    def add_weight(self, *args, **kwargs):
        if kwargs.get("name") in ("moving_mean", "moving_variance"):  # averaged over replicas (see above)
            kwargs["aggregation"] = "mean"
        return super().add_weight(*args, **kwargs)

    def _fusable(self, inputs, mask):
        return (mask is None and len(inputs.shape) == 4 and self.axis in (-1, 3) and not self.synchronized
                and not getattr(self, "renorm", False) and keras.backend.backend() == "tensorflow")

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = tf.convert_to_tensor(inputs)
        if x.dtype not in (tf.float32, tf.float16, tf.bfloat16):
            x = tf.cast(x, tf.float32)
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels], tf.float32)
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels], tf.float32)
        if training and self.trainable:
            outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta, mean=tf.zeros([0]), variance=tf.zeros([0]),
                epsilon=self.epsilon, data_format="NHWC", is_training=True)
            # The kernel returns the unbiased (n - 1) variance for the moving average; Keras keeps
            # the biased one, which is also what normalised this batch.
            count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
            variance = variance * tf.maximum(count - 1.0, 1.0) / tf.maximum(count, 1.0)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        else:
            outputs = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta, mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32), epsilon=self.epsilon,
                data_format="NHWC", is_training=False)[0]
        return tf.cast(outputs, self.compute_dtype)
