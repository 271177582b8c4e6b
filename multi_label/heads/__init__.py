"""Head registry: config name -> `Head` (the builder and what it reads), and the head settings.

A builder is `function(features, num_classes, settings, train_labels, class_names) -> logits`
with `settings` a `HeadSettings`. `train_labels` ([N, C] of 1/0/-1) and `class_names` are read
only by the label-graph heads, which build their graph from the training labels' co-occurrence
and look up word vectors for the class names; the others ignore them. The query heads
(`query2label`, `ml_decoder`) read the feature map with learned or fixed queries through
transformer decoder layers (the `decoder_*` settings). `groups` returns a dict of logits, one
entry per attribute group.
"""

import dataclasses
from collections.abc import Callable
from typing import Optional

import numpy as np

from dataset.cooccurrence import conditional_probability
from multi_label.heads.csra import csra_head
from multi_label.heads.embeddings import load_label_embeddings
from multi_label.heads.groups import group_head
from multi_label.heads.linear import linear_head
from multi_label.heads.ml_decoder import ml_decoder_head
from multi_label.heads.ml_gcn import ml_gcn_head
from multi_label.heads.query2label import query2label_head
from multi_label.heads.ssgrl import ssgrl_head
from utils.config import ConfigError
from utils.defaults import DEFAULTS


@dataclasses.dataclass(frozen=True)
class HeadSettings:
    """The settings the heads read; names and defaults are those of configs.py."""

    head: str = DEFAULTS.head
    pooling: str = DEFAULTS.pooling
    dropout: float = DEFAULTS.dropout
    groups: Optional[dict] = DEFAULTS.groups
    csra_heads: int = DEFAULTS.csra_heads
    csra_temperatures: Optional[list] = DEFAULTS.csra_temperatures
    csra_lambda: float = DEFAULTS.csra_lambda
    label_embeddings: str = DEFAULTS.label_embeddings
    graph_hidden: int = DEFAULTS.graph_hidden
    gcn_threshold: float = DEFAULTS.gcn_threshold
    gcn_reweight: float = DEFAULTS.gcn_reweight
    ssgrl_steps: int = DEFAULTS.ssgrl_steps
    decoder_layers: Optional[int] = DEFAULTS.decoder_layers
    decoder_width: int = DEFAULTS.decoder_width
    decoder_heads: int = DEFAULTS.decoder_heads
    decoder_feedforward: int = DEFAULTS.decoder_feedforward
    decoder_dropout: float = DEFAULTS.decoder_dropout
    ml_decoder_groups: Optional[int] = DEFAULTS.ml_decoder_groups


@dataclasses.dataclass(frozen=True)
class Head:
    """A registry entry.

    Args:
        build: callable. `build(features, num_classes, settings, train_labels, class_names)`.
        uses_pooling: bool. The head pools the feature map as `pooling` says, so `pooling="flatten"`
            fixes the input size (the feature map's size becomes part of the head).
    """

    build: Callable
    uses_pooling: bool = False


def _linear(features, num_classes, settings, train_labels=None, class_names=None):
    return linear_head(features, num_classes, pooling=settings.pooling, dropout=settings.dropout)


def _groups(features, num_classes, settings, train_labels=None, class_names=None):
    # The label file, which the config does not know, fixes the number of label columns.
    if len(settings.groups) != num_classes:
        raise ConfigError(f"head='groups' needs groups={{name: classes}} with one entry per label column "
                          f"({num_classes}). Received: groups={settings.groups!r}")
    return group_head(features, settings.groups, pooling=settings.pooling, dropout=settings.dropout)


def _csra(features, num_classes, settings, train_labels=None, class_names=None):
    return csra_head(features, num_classes, heads=settings.csra_heads, temperatures=settings.csra_temperatures,
                     lam=settings.csra_lambda, dropout=settings.dropout)


def _ml_gcn(features, num_classes, settings, train_labels=None, class_names=None):
    conditional, embeddings = label_graph(settings, num_classes, train_labels, class_names)
    return ml_gcn_head(features, num_classes, conditional, threshold=settings.gcn_threshold,
                       reweight=settings.gcn_reweight, hidden=settings.graph_hidden, embeddings=embeddings,
                       dropout=settings.dropout)


def _ssgrl(features, num_classes, settings, train_labels=None, class_names=None):
    conditional, embeddings = label_graph(settings, num_classes, train_labels, class_names)
    return ssgrl_head(features, num_classes, conditional, steps=settings.ssgrl_steps, hidden=settings.graph_hidden,
                      embeddings=embeddings, dropout=settings.dropout)


def _query2label(features, num_classes, settings, train_labels=None, class_names=None):
    return query2label_head(features, num_classes, **_decoder_arguments(settings))


def _ml_decoder(features, num_classes, settings, train_labels=None, class_names=None):
    # The label file, which the config does not know, fixes the number of label columns.
    groups = settings.ml_decoder_groups
    if groups is not None and groups > num_classes:
        raise ConfigError(f"ml_decoder_groups={groups} with {num_classes} label columns: each group query decodes "
                          f"one or more classes; expected at most {num_classes}, or None (min(classes, 100))")
    return ml_decoder_head(features, num_classes, groups=groups, **_decoder_arguments(settings))


def _decoder_arguments(settings):
    return dict(num_layers=settings.decoder_layers, width=settings.decoder_width, heads=settings.decoder_heads,
                feedforward=settings.decoder_feedforward, dropout=settings.decoder_dropout,
                feature_dropout=settings.dropout)


def label_graph(settings, num_classes, train_labels, class_names):
    """Returns (P(j | i) [C, C] of the training labels, label vectors [C, d] or None for learned ones).

    Args:
        settings: HeadSettings. Reads `head` (for messages) and `label_embeddings`.
        num_classes: int. Number of labels.
        train_labels: np.ndarray or None. Training labels [N, num_classes].
        class_names: list[str] or None. Class names, needed with `label_embeddings`.
    """
    if train_labels is None:
        raise ConfigError(f"head={settings.head!r} builds its label graph from the training labels; "
                          "pass train_labels to build_model")
    train_labels = np.asarray(train_labels)
    if train_labels.ndim != 2 or train_labels.shape[1] != num_classes:
        raise ConfigError(f"head={settings.head!r}: train_labels must be [images, {num_classes}]. Received shape "
                          f"{train_labels.shape}")
    embeddings = load_label_embeddings(settings.label_embeddings, class_names) if settings.label_embeddings else None
    return conditional_probability(train_labels), embeddings


HEADS = {
    "linear": Head(_linear, uses_pooling=True),
    "groups": Head(_groups, uses_pooling=True),
    "csra": Head(_csra),
    "ml_gcn": Head(_ml_gcn),
    "ssgrl": Head(_ssgrl),
    "query2label": Head(_query2label),
    "ml_decoder": Head(_ml_decoder),
}
