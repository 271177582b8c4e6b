"""Adam on TensorFlow's fused kernel: one operation a variable where Keras runs about twenty.

Keras 3's Adam updates each variable with separate small operations (the learning rate's bias
correction, both moments, the step), every one a kernel launch and a pass over the variable. On a
CPU at the demo's size (a quarter-width ResNet-18: 62 variables, a step of a few tens of
milliseconds) these launches are a visible share of the step (BENCHMARKS.md, "The demo on 2 AVX2
cores"). TensorFlow's `ResourceApplyAdam` does the same arithmetic in one kernel per variable:

    lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    m += (g - m) * (1 - beta_1);  v += (g^2 - v) * (1 - beta_2)
    w -= lr_t * m / (sqrt(v) + epsilon)

which is Keras's Adam to the letter (tests/test_optimizers.py runs both side by side). Decoupled
weight decay, clipping, EMA, gradient accumulation and loss scaling stay the Keras base
optimizer's, around `update_step`. `amsgrad` and other backends take Keras's own update.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="multi_label")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam`, same arguments and results, its update in one TensorFlow op a variable."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or keras.backend.backend() != "tensorflow":
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
            beta1_power=ops.power(ops.cast(self.beta_1, dtype), step),
            beta2_power=ops.power(ops.cast(self.beta_2, dtype), step),
            lr=ops.cast(learning_rate, dtype), beta1=ops.cast(self.beta_1, dtype),
            beta2=ops.cast(self.beta_2, dtype), epsilon=ops.cast(self.epsilon, dtype),
            grad=ops.cast(gradient, dtype), use_locking=False, use_nesterov=False)
