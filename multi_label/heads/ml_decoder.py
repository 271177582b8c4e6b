"""ML-Decoder: a few group queries decode all classes (Ridnik, Sharir, Ben-Cohen, Ben-Baruch and
Noy, "ML-Decoder: Scalable and Versatile Classification Head", WACV 2023, arXiv:2111.12933).

The feature map's tokens are embedded to the model width d (a dense layer and ReLU, the authors'
`embed_standart`); no position encoding. G fixed queries (a random N(0, 1) embedding, not trained,
as in the authors' code) read them through decoder layers without self-attention, which is what
keeps the cost linear in G (`decoder.DecoderLayer(query_block="residual")`). The group
fully-connected layer then turns each query's output h_g into k = ceil(C / G) logits with its
own d x k matrix; the logits are laid out query by query and the first C kept:

    out[b, g, j] = sum_d h[b, g, d] W[g, d, j];  logits = flatten(out)[:, :C] + bias

With G fixed, more classes grow only W ([G, d, k]) and the bias ([C]): the decoder's cost does not
depend on C. The paper's default is G = min(C, 100).
"""

import math

import keras
from keras import layers, ops

from multi_label.heads.decoder import DecoderLayer, apply_head, tokens

PAPER_LAYERS = 1  # the authors' num_layers_decoder
MAX_GROUPS = 100  # the authors' embed_len_decoder when num_of_groups is not given


def default_groups(num_classes):
    """The paper's number of group queries: one per class up to 100 classes, else 100."""
    return min(num_classes, MAX_GROUPS)


@keras.saving.register_keras_serializable(package="multi_label")
class MLDecoderHead(layers.Layer):
    """Feature map [batch, h, w, channels] -> logits [batch, num_classes].

    Args:
        num_classes: int. Number of labels C.
        groups: int. Group queries G, 1 to C.
        width: int. Model width d, a multiple of `heads`.
        num_layers: int. Decoder layers.
        heads: int. Attention heads.
        feedforward: int. Hidden width of each layer's feed-forward block.
        dropout: float. Dropout rate inside the decoder layers.
    """

    def __init__(self, num_classes, groups, width=256, num_layers=PAPER_LAYERS, heads=8, feedforward=1024,
                 dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.groups, self.width = int(num_classes), int(groups), int(width)
        self.num_layers, self.heads, self.feedforward, self.dropout = (int(num_layers), int(heads), int(feedforward),
                                                                       float(dropout))
        if not 1 <= self.groups <= self.num_classes or self.num_layers < 1:
            raise ValueError(f"groups must be in [1, num_classes] and num_layers >= 1. Received: groups={groups}, "
                             f"num_classes={num_classes}, num_layers={num_layers}")
        self.classes_per_group = math.ceil(self.num_classes / self.groups)
        policy = self.dtype_policy  # sublayers compute in this layer's precision (float32, also under mixed)
        self.embedding = layers.Dense(self.width, activation="relu", dtype=policy, name="embedding")
        self.decoder_layers = [DecoderLayer(self.width, self.heads, self.feedforward, self.dropout,
                                            query_block="residual", dtype=policy, name=f"decoder{i}")
                               for i in range(self.num_layers)]

    def build(self, input_shape):
        self.embedding.build((None, input_shape[-1]))
        self.queries = self.add_weight(shape=(self.groups, self.width), name="queries", trainable=False,
                                       initializer=keras.initializers.RandomNormal(stddev=1.0))
        for layer in self.decoder_layers:
            layer.build((None, self.groups, self.width), (None, None, self.width))
        # torch's xavier_normal_ on the [G, d, k] tensor: fan_in d k, fan_out G k
        k = self.classes_per_group
        std = math.sqrt(2.0 / (self.width * k + self.groups * k))
        # `kernel` and `bias`, the names the L2 weight decay looks for (multi_label/optim/weight_decay.py)
        self.kernel = self.add_weight(shape=(self.groups, self.width, k), name="group_kernel",
                                      initializer=keras.initializers.RandomNormal(stddev=std))
        self.bias = self.add_weight(shape=(self.num_classes,), name="group_bias", initializer="zeros")

    def call(self, features, training=None):
        memory = tokens(self.embedding(ops.cast(features, self.compute_dtype)))
        batch = ops.shape(memory)[0]
        t = ops.broadcast_to(self.queries[None], (batch, self.groups, self.width))
        for layer in self.decoder_layers:
            t = layer(t, memory, training=training)
        out = ops.einsum("bgd,gdk->bgk", t, self.kernel)
        out = ops.reshape(out, (batch, self.groups * self.classes_per_group))
        return out[:, :self.num_classes] + self.bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "groups": self.groups, "width": self.width,
                "num_layers": self.num_layers, "heads": self.heads, "feedforward": self.feedforward,
                "dropout": self.dropout}


def ml_decoder_head(features, num_classes, groups=None, num_layers=None, feature_dropout=0.0, name="ml_decoder",
                    **settings):
    """Returns ML-Decoder logits [batch, num_classes] (float32) from a feature map.

    Args:
        features: KerasTensor. Backbone feature map.
        num_classes: int. Number of labels.
        groups: int or None. Group queries; None: `default_groups(num_classes)`.
        num_layers: int or None. Decoder layers; None: the authors' 1.
        feature_dropout: float. Spatial dropout rate on the feature map.
        name: str. Layer name.
        **settings: `width`, `heads`, `feedforward` and `dropout` of `MLDecoderHead`.
    """
    layer = MLDecoderHead(num_classes, default_groups(num_classes) if groups is None else groups,
                          num_layers=PAPER_LAYERS if num_layers is None else num_layers, dtype="float32", name=name,
                          **settings)
    return apply_head(layer, features, feature_dropout)
