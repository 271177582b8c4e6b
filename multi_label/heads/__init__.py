"""Head registry: config name -> function(features, num_classes, config, train_labels, class_names) -> logits.

`train_labels` ([N, C] of 1/0/-1) and `class_names` are read only by the label-graph heads, which
build their graph from the training labels' co-occurrence and look up word vectors for the class
names; the others ignore them. `groups` returns a dict of logits, one entry per attribute group.
"""

import numpy as np

from dataset.cooccurrence import conditional_probability
from multi_label.heads.csra import csra_head
from multi_label.heads.embeddings import load_label_embeddings
from multi_label.heads.groups import group_head
from multi_label.heads.linear import linear_head
from multi_label.heads.ml_gcn import ml_gcn_head
from multi_label.heads.ssgrl import ssgrl_head
from utils.config import ConfigError


def _linear(features, num_classes, config, train_labels=None, class_names=None):
    return linear_head(features, num_classes, pooling=config.pooling, dropout=config.dropout)


def _groups(features, num_classes, config, train_labels=None, class_names=None):
    if not config.groups or len(config.groups) != num_classes:
        raise ConfigError(f"head='groups' needs groups={{name: classes}} with one entry per label column "
                          f"({num_classes}). Received: groups={config.groups!r}")
    return group_head(features, config.groups, pooling=config.pooling, dropout=config.dropout)


def _csra(features, num_classes, config, train_labels=None, class_names=None):
    return csra_head(features, num_classes, heads=config.csra_heads, temperatures=config.csra_temperatures,
                     lam=config.csra_lambda, dropout=config.dropout)


def _ml_gcn(features, num_classes, config, train_labels=None, class_names=None):
    conditional, embeddings = label_graph(config, num_classes, train_labels, class_names)
    return ml_gcn_head(features, num_classes, conditional, threshold=config.gcn_threshold,
                       reweight=config.gcn_reweight, hidden=config.graph_hidden, embeddings=embeddings,
                       dropout=config.dropout)


def _ssgrl(features, num_classes, config, train_labels=None, class_names=None):
    conditional, embeddings = label_graph(config, num_classes, train_labels, class_names)
    return ssgrl_head(features, num_classes, conditional, steps=config.ssgrl_steps, hidden=config.graph_hidden,
                      embeddings=embeddings, dropout=config.dropout)


def label_graph(config, num_classes, train_labels, class_names):
    """Returns (P(j | i) [C, C] of the training labels, label vectors [C, d] or None for learned ones)."""
    if train_labels is None:
        raise ConfigError(f"head={config.head!r} builds its label graph from the training labels; "
                          "pass train_labels to build_model")
    train_labels = np.asarray(train_labels)
    if train_labels.ndim != 2 or train_labels.shape[1] != num_classes:
        raise ConfigError(f"head={config.head!r}: train_labels must be [images, {num_classes}]. Received shape "
                          f"{train_labels.shape}")
    embeddings = load_label_embeddings(config.label_embeddings, class_names) if config.label_embeddings else None
    return conditional_probability(train_labels), embeddings


HEADS = {
    "linear": _linear,
    "groups": _groups,
    "csra": _csra,
    "ml_gcn": _ml_gcn,
    "ssgrl": _ssgrl,
}
