"""CSRA: class-specific residual attention (Zhu and Wu, "Residual Attention: A Simple but
Effective Method for Multi-Label Recognition", ICCV 2021).

Each class i has a classifier m_i applied at every location k of the feature map, giving scores
s_ik = x_k . m_i / |m_i|. The logit adds to their average (the usual global-average-pooled
classifier) a class-specific attention term, the scores averaged with weights softmax_k(T s_ik):

    logit_i = mean_k s_ik + lambda * sum_k softmax_k(T s_ik) s_ik

T -> infinity turns the attention into max pooling over locations; like the authors' code, a
temperature of 99 stands for that. Several heads with different temperatures (each with its
own classifiers) sum their logits ("multi-head attention"), with the paper's temperature sets
in `PAPER_TEMPERATURES`. Following the authors' code, the classifiers have no bias and both
terms use the normalised scores.
"""

import keras
from keras import layers, ops

MAX_POOLING = 99.0
PAPER_TEMPERATURES = {1: [1.0], 2: [1.0, 99.0], 4: [1.0, 2.0, 4.0, 99.0], 6: [1.0, 2.0, 3.0, 4.0, 5.0, 99.0],
                      8: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 99.0]}


@keras.saving.register_keras_serializable(package="multi_label")
class ClassSpecificResidualAttention(layers.Layer):
    """Feature map [batch, h, w, channels] -> logits [batch, num_classes].

    Args:
        num_classes: int. Number of labels.
        temperatures: list[float]. One softmax temperature T per head; 99 means max pooling.
        lam: float. Weight lambda of the attention term.
    """

    def __init__(self, num_classes, temperatures=(1.0,), lam=0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.temperatures = [float(t) for t in temperatures]
        self.lam = float(lam)
        if not self.temperatures or min(self.temperatures) <= 0:
            raise ValueError(f"temperatures must be a non-empty list of numbers > 0. Received: {temperatures!r}")

    def build(self, input_shape):
        channels = input_shape[-1]
        # one [channels, classes] classifier per head, as a 1x1 convolution without bias
        self.kernel = self.add_weight(shape=(len(self.temperatures), channels, self.num_classes),
                                      initializer="glorot_uniform", name="kernel")

    def call(self, features):
        x = ops.cast(features, self.compute_dtype)
        x = ops.reshape(x, (ops.shape(x)[0], -1, ops.shape(x)[-1]))  # [batch, locations, channels]
        norm = ops.sqrt(ops.sum(ops.square(self.kernel), axis=1, keepdims=True))
        classifiers = self.kernel / ops.maximum(norm, 1e-12)
        logits = 0.0
        for head, temperature in enumerate(self.temperatures):
            scores = ops.matmul(x, classifiers[head])  # [batch, locations, classes]
            base = ops.mean(scores, axis=1)
            if temperature == MAX_POOLING:
                attention = ops.max(scores, axis=1)
            else:
                attention = ops.sum(ops.softmax(scores * temperature, axis=1) * scores, axis=1)
            logits = logits + base + self.lam * attention
        return logits

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "temperatures": self.temperatures,
                "lam": self.lam}


def csra_head(features, num_classes, heads=1, temperatures=None, lam=0.1, dropout=0.0, name="csra"):
    """Returns CSRA logits [batch, num_classes] (float32).

    Args:
        features: KerasTensor. Backbone feature map.
        num_classes: int. Number of labels.
        heads: int. Number of attention heads, a key of `PAPER_TEMPERATURES`; read only when
            `temperatures` is None.
        temperatures: list[float] or None. One per head; None: the paper's set for `heads`.
        lam: float. Weight of the attention term.
        dropout: float. Spatial dropout rate on the feature map before the classifiers.
        name: str. Layer name.
    """
    if temperatures is None:
        temperatures = PAPER_TEMPERATURES[heads]
    if dropout > 0:
        features = layers.SpatialDropout2D(dropout, name=f"{name}_dropout")(features)
    return ClassSpecificResidualAttention(num_classes, temperatures, lam, dtype="float32", name=name)(features)
