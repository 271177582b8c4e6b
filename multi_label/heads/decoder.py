"""The pieces the query heads share: a post-norm transformer decoder layer and the 2-D sine encoding.

A set of queries [batch, queries, width] reads a memory of image tokens [batch, locations, width]
(the feature map, flattened) through multi-head attention, softmax(Q K^T / sqrt(d_head)) V per
head. Query2Label (`query2label.py`) and ML-Decoder (`ml_decoder.py`) differ in the queries, in the
position encoding and in what precedes the cross-attention; both are built from Keras's own
`MultiHeadAttention`, `LayerNormalization` and `Dense` layers. The layer norms use PyTorch's
epsilon, 1e-5, as both reference codes do (Keras's default is 1e-3).
"""

import math

import keras
import numpy as np
from keras import layers, ops

LAYER_NORM_EPSILON = 1e-5
POSITION_TEMPERATURE = 10000.0
# What a decoder layer does to its queries before they read the memory (see DecoderLayer).
QUERY_BLOCKS = ("self_attention", "residual", "none")


@keras.saving.register_keras_serializable(package="multi_label")
class DecoderLayer(layers.Layer):
    """One post-norm decoder layer: queries [batch, queries, width] read memory [batch, locations, width].

    DETR's layer (Carion et al., ECCV 2020), as Query2Label's `transformer.py` has it, with
    `query_block="self_attention"`:

        t = norm1(t + dropout(SelfAttention(q=t+p, k=t+p, v=t)))
        t = norm2(t + dropout(CrossAttention(q=t+p, k=memory_keys, v=memory)))
        t = norm3(t + dropout(W2 dropout(relu(W1 t + b1)) + b2))

    with p the query position (learned query embedding) and `memory_keys` the memory plus its
    position encoding. `query_block="none"` leaves the first line out (with its norm), as
    Query2Label's code does in its first layer, whose input is zero. ML-Decoder's
    `TransformerDecoderLayerOptimal` (`query_block="residual"`) replaces the self-attention by
    `t = norm1(t + dropout(t))` and has no positions.

    Args:
        width: int. Width of queries and memory (the model width d).
        heads: int. Attention heads; `width` is a multiple of it.
        feedforward: int. Hidden width of the feed-forward block.
        dropout: float. Rate of every dropout, attention weights included (both papers: 0.1).
        query_block: str. What precedes the cross-attention, a key of `QUERY_BLOCKS`.
    """

    def __init__(self, width, heads, feedforward, dropout=0.1, query_block="self_attention", **kwargs):
        super().__init__(**kwargs)
        self.width, self.heads, self.feedforward = int(width), int(heads), int(feedforward)
        self.dropout, self.query_block = float(dropout), query_block
        if self.width % self.heads or query_block not in QUERY_BLOCKS:
            raise ValueError(f"width must be a multiple of heads and query_block one of {QUERY_BLOCKS}. Received: "
                             f"width={width}, heads={heads}, query_block={query_block!r}")
        policy = self.dtype_policy  # sublayers compute in this layer's precision (float32 for the heads)
        attention = dict(num_heads=self.heads, key_dim=self.width // self.heads, dropout=self.dropout, dtype=policy)
        self.self_attn = (layers.MultiHeadAttention(**attention, name="self_attention")
                          if query_block == "self_attention" else None)
        self.cross_attn = layers.MultiHeadAttention(**attention, name="cross_attention")
        self.linear1 = layers.Dense(self.feedforward, activation="relu", dtype=policy, name="linear1")
        self.linear2 = layers.Dense(self.width, dtype=policy, name="linear2")
        self.norm1 = (None if query_block == "none"
                      else layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, dtype=policy, name="norm1"))
        self.norm2, self.norm3 = (layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, dtype=policy, name=f"norm{i}")
                                  for i in (2, 3))
        self.dropouts = [layers.Dropout(self.dropout, dtype=policy, name=f"dropout{i}") for i in range(4)]

    def build(self, queries_shape, memory_shape=None):
        memory_shape = queries_shape if memory_shape is None else memory_shape
        if self.self_attn is not None:
            self.self_attn.build(queries_shape, queries_shape, queries_shape)
        self.cross_attn.build(queries_shape, memory_shape, memory_shape)
        self.linear1.build(queries_shape)
        self.linear2.build((*queries_shape[:-1], self.feedforward))
        for norm in (self.norm1, self.norm2, self.norm3):
            if norm is not None:
                norm.build(queries_shape)

    def call(self, queries, memory, memory_keys=None, query_position=None, training=None):
        """Returns the updated queries.

        Args:
            queries: tensor. [batch, queries, width].
            memory: tensor. [batch, locations, width]; the attention's values.
            memory_keys: tensor or None. The attention's keys; None: `memory`.
            query_position: tensor or None. Added to the queries wherever they are attention queries or keys.
        """
        drop, drop1, drop2, drop3 = self.dropouts
        t = queries
        if self.query_block == "self_attention":
            q = t if query_position is None else t + query_position
            t = self.norm1(t + drop1(self.self_attn(q, t, key=q, training=training), training=training))
        elif self.query_block == "residual":
            t = self.norm1(t + drop1(t, training=training))
        q = t if query_position is None else t + query_position
        keys = memory if memory_keys is None else memory_keys
        t = self.norm2(t + drop2(self.cross_attn(q, memory, key=keys, training=training), training=training))
        return self.norm3(t + drop3(self.linear2(drop(self.linear1(t), training=training)), training=training))

    def compute_output_shape(self, queries_shape, memory_shape=None):
        return queries_shape

    def get_config(self):
        return {**super().get_config(), "width": self.width, "heads": self.heads, "feedforward": self.feedforward,
                "dropout": self.dropout, "query_block": self.query_block}


def apply_head(layer, features, feature_dropout=0.0):
    """Returns `layer(features)`, after dropping whole channels of the feature map at rate `feature_dropout`."""
    if feature_dropout > 0:
        features = layers.SpatialDropout2D(feature_dropout, name=f"{layer.name}_dropout")(features)
    return layer(features)


def tokens(features):
    """The feature map [batch, h, w, channels] as tokens [batch, h * w, channels], row by row."""
    return ops.reshape(features, (ops.shape(features)[0], -1, ops.shape(features)[-1]))


def sine_position_encoding(height, width, channels):
    """DETR's `PositionEmbeddingSine(normalize=True)`: [height * width, channels], row by row.

    Rows and columns are numbered from 1 and scaled to (0, 2 pi]: y = i / (height + 1e-6) * 2 pi,
    x likewise; the first half of the channels encodes y, the second x, each as
    sin(y / T^(2 floor(k/2) / n)) at even k and cos(...) at odd k, with n = channels / 2 and
    T = 10000. Normalised, it spans the same range on a feature map of any size.

    Args:
        height: int or scalar tensor. Rows of the feature map.
        width: int or scalar tensor. Columns.
        channels: int. An even number: the model width.
    """
    half = channels // 2
    k = np.arange(half)
    inverse_period = ops.convert_to_tensor((POSITION_TEMPERATURE ** (-2.0 * (k // 2) / half)).astype(np.float32))
    even = ops.convert_to_tensor(k % 2 == 0)

    def encode(count):
        position = (ops.cast(ops.arange(count), "float32") + 1.0) / (ops.cast(count, "float32") + 1e-6)
        position = position * (2 * math.pi)
        angle = position[:, None] * inverse_period[None, :]
        return ops.where(even[None, :], ops.sin(angle), ops.cos(angle))  # [count, half]

    rows, columns = encode(height), encode(width)
    grid = ops.concatenate([ops.broadcast_to(rows[:, None, :], (height, width, half)),
                            ops.broadcast_to(columns[None, :, :], (height, width, half))], axis=-1)
    return ops.reshape(grid, (-1, channels))
