"""Query2Label: one learned query per class reads the feature map through transformer decoder layers
(Liu, Zhang, Yang, Su and Zhu, "Query2Label: A Simple Transformer Way to Multi-Label
Classification", arXiv:2107.10834, 2021).

The feature map, projected to the model width d by a 1x1 convolution, is flattened to tokens; its
keys carry DETR's fixed 2-D sine position encoding (`decoder.sine_position_encoding`), its values
do not. The decoder's input starts at zero and each class's learned query embedding q_c is its
query position, added wherever the queries attend (DETR's `query_pos`):

    t = 0;  for each layer: t = DecoderLayer(t, memory, memory_keys = memory + pos, query_position = q)
    h = LayerNorm(t);  logit_c = W_c . h_c + b_c

The last line is the authors' `GroupWiseLinear`: one weight vector and bias per class, each
class's logit read from its own query. Each decoder layer has self-attention over the class
queries, cross-attention to the image tokens and a feed-forward block, post-norm, as in the paper.
The first layer has no self-attention: its input is zero, so it could only add a constant, and
the authors' code removes it too (`rm_first_self_attn`). Their code by default also drops the
later layers' self-attention and adds a transformer encoder layer over the tokens; neither is
done here.
"""

import math

import keras
from keras import layers, ops

from multi_label.heads.decoder import LAYER_NORM_EPSILON, DecoderLayer, apply_head, sine_position_encoding, tokens

PAPER_LAYERS = 2  # the authors' dec_layers


@keras.saving.register_keras_serializable(package="multi_label")
class Query2LabelHead(layers.Layer):
    """Feature map [batch, h, w, channels] -> logits [batch, num_classes].

    Args:
        num_classes: int. Number of labels, one query each.
        width: int. Model width d, even (half the position encoding is rows, half columns) and a
            multiple of `heads`.
        num_layers: int. Decoder layers.
        heads: int. Attention heads.
        feedforward: int. Hidden width of each layer's feed-forward block.
        dropout: float. Dropout rate inside the decoder layers.
    """

    def __init__(self, num_classes, width=256, num_layers=PAPER_LAYERS, heads=8, feedforward=1024, dropout=0.1,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.width, self.num_layers = int(num_classes), int(width), int(num_layers)
        self.heads, self.feedforward, self.dropout = int(heads), int(feedforward), float(dropout)
        if self.width % 2 or self.num_layers < 1:
            raise ValueError(f"width must be even and num_layers >= 1. Received: width={width}, "
                             f"num_layers={num_layers}")
        policy = self.dtype_policy  # sublayers compute in this layer's precision (float32, also under mixed)
        self.input_projection = layers.Dense(self.width, dtype=policy, name="input_projection")  # the 1x1 conv
        # the first layer's input is zero: its self-attention would only add a constant (dropped, as the authors do)
        self.decoder_layers = [DecoderLayer(self.width, self.heads, self.feedforward, self.dropout,
                                            query_block="none" if i == 0 else "self_attention", dtype=policy,
                                            name=f"decoder{i}")
                               for i in range(self.num_layers)]
        self.final_norm = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, dtype=policy, name="final_norm")

    def build(self, input_shape):
        self.input_projection.build((None, input_shape[-1]))
        # nn.Embedding's N(0, 1); the classifier as GroupWiseLinear, U(-1/sqrt(d), 1/sqrt(d))
        self.query_embedding = self.add_weight(shape=(self.num_classes, self.width), name="query_embedding",
                                               initializer=keras.initializers.RandomNormal(stddev=1.0))
        limit = 1.0 / math.sqrt(self.width)
        uniform = keras.initializers.RandomUniform(-limit, limit)
        # `kernel` and `bias`, the names the L2 weight decay looks for (multi_label/optim/weight_decay.py)
        self.kernel = self.add_weight(shape=(self.num_classes, self.width), name="classifier_kernel",
                                      initializer=uniform)
        self.bias = self.add_weight(shape=(self.num_classes,), name="classifier_bias", initializer=uniform)
        queries = (None, self.num_classes, self.width)
        for layer in self.decoder_layers:
            layer.build(queries, (None, None, self.width))
        self.final_norm.build(queries)

    def call(self, features, training=None):
        x = self.input_projection(ops.cast(features, self.compute_dtype))
        height, width = ops.shape(x)[1], ops.shape(x)[2]
        memory = tokens(x)
        position = ops.cast(sine_position_encoding(height, width, self.width), self.compute_dtype)
        keys = memory + position[None]
        query_position = ops.broadcast_to(self.query_embedding[None],
                                          (ops.shape(memory)[0], self.num_classes, self.width))
        t = ops.zeros_like(query_position)
        for layer in self.decoder_layers:
            t = layer(t, memory, memory_keys=keys, query_position=query_position, training=training)
        return ops.sum(self.final_norm(t) * self.kernel, axis=-1) + self.bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "width": self.width,
                "num_layers": self.num_layers, "heads": self.heads, "feedforward": self.feedforward,
                "dropout": self.dropout}


def query2label_head(features, num_classes, num_layers=None, feature_dropout=0.0, name="query2label", **settings):
    """Returns Query2Label logits [batch, num_classes] (float32) from a feature map.

    Args:
        features: KerasTensor. Backbone feature map.
        num_classes: int. Number of labels.
        num_layers: int or None. Decoder layers; None: the authors' 2.
        feature_dropout: float. Spatial dropout rate on the feature map.
        name: str. Layer name.
        **settings: `width`, `heads`, `feedforward` and `dropout` of `Query2LabelHead`.
    """
    layer = Query2LabelHead(num_classes, num_layers=PAPER_LAYERS if num_layers is None else num_layers,
                            dtype="float32", name=name, **settings)
    return apply_head(layer, features, feature_dropout)
