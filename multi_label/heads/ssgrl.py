"""SSGRL: semantic-specific graph representation learning (Chen, Xu, Hui, Wu and Lin, "Learning
Semantic-Specific Graph Representation for Multi-Label Image Classification", ICCV 2019).

Semantic decoupling: for every class c, a low-rank bilinear attention scores each location of
the feature map against the class's label embedding x_c,

    f~_c,k = P tanh((U f_k) * (V x_c)) + b,    a_c,k = softmax over k of (w_a . f~_c,k + b_a),

and the class's feature is f_c = sum_k a_c,k f_k: one image feature per class (section 3.1).
Semantic interaction: a gated graph neural network (Li et al. 2016) over the classes, whose edge
weights are the training labels' conditional probabilities A[c, c'] = P(c' | c) (diagonal zero:
the GRU keeps a node's own state), propagates the class features for T steps, messages running
along and against the edges (section 3.2):

    a_c = [sum_c' A[c, c'] h_c', sum_c' A[c', c] h_c']
    z = sigmoid(W_z a + U_z h), r = sigmoid(W_r a + U_r h)
    h <- (1 - z) * h + z * tanh(W a + U (r * h))

Each class's logit comes from its own classifier on o_c = tanh(W_o [h_c^T, h_c^0]), as in the
authors' code (an element-wise layer: one weight vector and bias per class).
"""

import keras
import numpy as np
from keras import layers, ops

from multi_label.heads.embeddings import add_label_vectors


@keras.saving.register_keras_serializable(package="multi_label")
class SemanticGraphHead(layers.Layer):
    """Feature map [batch, h, w, channels] -> logits [batch, num_classes].

    Args:
        num_classes: int. Number of labels.
        conditional: list. [C, C] P(j | i) of the training labels (kept in the config).
        steps: int. Propagation steps T of the gated graph network (3 in the paper).
        hidden: int. Rank of the bilinear attention (1024 in the paper).
        embeddings: list or None. [C, d] label vectors from a file; None: learned embeddings.
    """

    def __init__(self, num_classes, conditional, steps=3, hidden=1024, embeddings=None, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.conditional = np.asarray(conditional, np.float64)
        self.steps = int(steps)
        self.hidden = int(hidden)
        self.embeddings = None if embeddings is None else np.asarray(embeddings, np.float32)
        if self.conditional.shape != (self.num_classes, self.num_classes):
            raise ValueError(f"conditional must be [{num_classes}, {num_classes}]. Received shape "
                             f"{self.conditional.shape}")
        self.adjacency = self.conditional.astype(np.float32)
        np.fill_diagonal(self.adjacency, 0.0)
        self.image_projection = _dense(self, self.hidden, "image_projection", use_bias=False)  # U
        self.label_projection = _dense(self, self.hidden, "label_projection", use_bias=False)  # V
        self.joint_projection = _dense(self, self.hidden, "joint_projection")  # P, b
        self.attention = _dense(self, 1, "attention")  # w_a, b_a

    def build(self, input_shape):
        channels = input_shape[-1]
        self.label_vectors = add_label_vectors(self, self.num_classes, self.embeddings)
        self.image_projection.build((None, channels))
        self.label_projection.build((None, self.label_vectors.shape[-1]))
        self.joint_projection.build((None, self.hidden))
        self.attention.build((None, self.hidden))
        # GRU of the graph network: messages (2 x channels) and state (channels) to each gate
        self.message_gates = _dense(self, 3 * channels, "message_gates")  # W_z, W_r, W
        self.state_gates = _dense(self, 2 * channels, "state_gates", use_bias=False)  # U_z, U_r
        self.state_candidate = _dense(self, channels, "state_candidate", use_bias=False)  # U
        self.output_projection = _dense(self, channels, "output_projection")  # W_o
        self.message_gates.build((None, 2 * channels))
        self.state_gates.build((None, channels))
        self.state_candidate.build((None, channels))
        self.output_projection.build((None, 2 * channels))
        self.classifier_kernel = self.add_weight(shape=(self.num_classes, channels), name="classifier_kernel",
                                                 initializer="glorot_uniform")
        self.classifier_bias = self.add_weight(shape=(self.num_classes,), name="classifier_bias",
                                               initializer="zeros")

    def decouple(self, features):
        """Class-specific features [batch, classes, channels] by label-guided attention."""
        x = ops.cast(features, self.compute_dtype)
        x = ops.reshape(x, (ops.shape(x)[0], -1, ops.shape(x)[-1]))  # [batch, locations, channels]
        image = self.image_projection(x)[:, :, None, :]  # [batch, locations, 1, hidden]
        labels = self.label_projection(self.label_vectors)[None, None]  # [1, 1, classes, hidden]
        scores = self.attention(self.joint_projection(ops.tanh(image * labels)))[..., 0]
        weights = ops.softmax(scores, axis=1)  # over locations, per class
        return ops.einsum("bkc,bkd->bcd", weights, x)

    def interact(self, nodes):
        """T steps of the gated graph network over [batch, classes, channels]."""
        adjacency = ops.convert_to_tensor(self.adjacency, dtype=self.compute_dtype)
        state = nodes
        for _ in range(self.steps):
            messages = ops.concatenate([ops.einsum("ij,bjd->bid", adjacency, state),
                                        ops.einsum("ji,bjd->bid", adjacency, state)], axis=-1)
            from_messages = ops.split(self.message_gates(messages), 3, axis=-1)
            from_state = ops.split(self.state_gates(state), 2, axis=-1)
            update = ops.sigmoid(from_messages[0] + from_state[0])
            reset = ops.sigmoid(from_messages[1] + from_state[1])
            candidate = ops.tanh(from_messages[2] + self.state_candidate(reset * state))
            state = (1.0 - update) * state + update * candidate
        return state

    def call(self, features):
        nodes = self.decouple(features)
        state = self.interact(nodes)
        outputs = ops.tanh(self.output_projection(ops.concatenate([state, nodes], axis=-1)))
        return ops.sum(outputs * self.classifier_kernel, axis=-1) + self.classifier_bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "conditional": self.conditional.tolist(),
                "steps": self.steps, "hidden": self.hidden,
                "embeddings": None if self.embeddings is None else self.embeddings.tolist()}


def _dense(layer, units, name, use_bias=True):
    # sublayers compute in their parent's precision (float32 here, also under mixed precision)
    return layers.Dense(units, use_bias=use_bias, dtype=layer.dtype_policy, name=name)


def ssgrl_head(features, num_classes, conditional, steps=3, hidden=1024, embeddings=None, dropout=0.0,
               name="ssgrl"):
    """Returns SSGRL logits [batch, num_classes] (float32) from a feature map.

    Args:
        features: KerasTensor. Backbone feature map.
        num_classes: int. Number of labels.
        conditional: np.ndarray. [C, C] P(j | i) of the training labels.
        steps: int. Propagation steps T.
        hidden: int. Rank of the bilinear attention.
        embeddings: np.ndarray or None. [C, d] label vectors; None: learned.
        dropout: float. Spatial dropout rate on the feature map.
        name: str. Layer name.
    """
    if dropout > 0:
        features = layers.SpatialDropout2D(dropout, name=f"{name}_dropout")(features)
    return SemanticGraphHead(num_classes, conditional, steps, hidden, embeddings, dtype="float32",
                             name=name)(features)
