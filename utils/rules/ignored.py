"""Settings that a choice of other settings never reads: "X would be ignored unless Y", as one table.

A setting turned on (away from its "off" value: 0, None, "", "none") for a part that never reads it
would be ignored silently, so the run stops instead. Each row of `IGNORED` says when the setting counts
as set, which settings leave it unread and when, why, and the fix; `IGNORED_RULES` are its `Rule`s,
with one message: "<setting>=<value> would be ignored with <others>: <why>; <fix>".

Settings with a working default that belong to another choice (ghm_bins with loss='bce', pooling='max'
with head='csra', decoder_width with head='linear') are left alone: the page holds them all. focal_alpha
and asl_clip are on by default; with head='groups' they count only together with their loss
(loss='focal', loss='asl'), whose one-of-K version has no such term. So the default config passes with
head='groups', and a groups run with that loss turns the term off itself.
"""

from collections.abc import Callable
from typing import NamedTuple

from utils.rules.names import LABEL_GRAPH_HEADS, PARTIAL_LABEL_LOSSES, POOLING_HEADS, QUERY_HEADS
from utils.rules.rule import Rule, either_name


class Ignored(NamedTuple):
    """A setting that some values of other settings leave unread: one row of `IGNORED`.

    Args:
        key: str. The setting that would be ignored.
        on: callable. config -> True when `key` is set away from its "off" value.
        by: tuple[str]. The settings that decide whether `key` is read; the message names their values.
        unread: callable. config -> True when those settings leave `key` unread.
        why: str. Why nothing reads it then.
        fix: str. What to set instead.
    """

    key: str
    on: Callable
    by: tuple
    unread: Callable
    why: str
    fix: str


def _groups(c):
    """head='groups': one softmax per group, a label is one class index, the losses are one-of-K ones."""
    return c.head == "groups"


IGNORED = (
    Ignored("tfrecord_dir", lambda c: bool(c.tfrecord_dir), ("data_format",), lambda c: c.data_format != "tfrecord",
            "only data_format='tfrecord' reads it", "set data_format='tfrecord', or tfrecord_dir=''"),
    Ignored("csra_temperatures", lambda c: c.csra_temperatures is not None, ("head",), lambda c: c.head != "csra",
            "only head='csra' reads it", "set head='csra', or csra_temperatures=None"),
    Ignored("pooling", lambda c: c.pooling == "flatten", ("head",), lambda c: c.head not in POOLING_HEADS,
            f"only head {either_name(POOLING_HEADS)} pools the feature map",
            "choose one of them, or leave pooling at its default"),
    Ignored("label_embeddings", lambda c: bool(c.label_embeddings), ("head",),
            lambda c: c.head not in LABEL_GRAPH_HEADS, f"only head {either_name(LABEL_GRAPH_HEADS)} reads word vectors",
            "choose one of them, or label_embeddings=''"),
    Ignored("decoder_layers", lambda c: c.decoder_layers is not None, ("head",), lambda c: c.head not in QUERY_HEADS,
            f"only head {either_name(QUERY_HEADS)} has decoder layers", "choose one of them, or decoder_layers=None"),
    Ignored("ml_decoder_groups", lambda c: c.ml_decoder_groups is not None, ("head",),
            lambda c: c.head != "ml_decoder", "only head='ml_decoder' reads it",
            "set head='ml_decoder', or ml_decoder_groups=None"),
    Ignored("mixup_alpha", lambda c: c.mixup_alpha > 0, ("head",), _groups,
            "MixUp mixes label vectors, but a group's label is one class index", "set mixup_alpha=0"),
    Ignored("cutmix_alpha", lambda c: c.cutmix_alpha > 0, ("head",), _groups,
            "CutMix mixes label vectors, but a group's label is one class index", "set cutmix_alpha=0"),
    Ignored("repeat_factor_threshold", lambda c: c.repeat_factor_threshold > 0, ("head",), _groups,
            "repeat-factor sampling counts the positives of each class column, but a group's label is one class "
            "index", "set repeat_factor_threshold=0"),
    Ignored("class_weighting", lambda c: c.class_weighting != "none", ("head",), _groups,
            "the one-of-K losses have no positive and negative term per class to weight", "set class_weighting='none'"),
    Ignored("balanced_epochs", lambda c: c.balanced_epochs > 0, ("head",), _groups,
            "class-balanced sampling counts the positives of each class column, not group indices",
            "set balanced_epochs=0"),
    Ignored("pos_weight", lambda c: c.pos_weight is not None, ("head",), _groups,
            "the one-of-K losses have no positive weight per class", "set pos_weight=None"),
    Ignored("focal_alpha", lambda c: c.focal_alpha >= 0, ("head", "loss"), lambda c: _groups(c) and c.loss == "focal",
            "the one-of-K focal loss has no class weighting", "set focal_alpha=-1 (off)"),
    Ignored("asl_clip", lambda c: c.asl_clip > 0, ("head", "loss"), lambda c: _groups(c) and c.loss == "asl",
            "the one-of-K ASL has no probability shift", "set asl_clip=0"),
    Ignored("temperature_scaling", lambda c: c.temperature_scaling, ("head",), _groups,
            "a temperature is fitted for sigmoid outputs only", "set temperature_scaling=False"),
    Ignored("unknown_labels", lambda c: c.unknown_labels != "ignore", ("loss",),
            lambda c: c.loss in PARTIAL_LABEL_LOSSES,
            f"loss {either_name(PARTIAL_LABEL_LOSSES)} gives -1 labels a term of its own",
            "set unknown_labels='ignore'"),
    Ignored("unknown_labels", lambda c: c.unknown_labels != "ignore", ("head",), _groups,
            "the one-of-K losses leave an unknown (-1) group label out, there is no negative to take it for",
            "set unknown_labels='ignore'"),
    Ignored("lr_steps", lambda c: c.lr_steps is not None, ("lr_schedule",), lambda c: c.lr_schedule != "step",
            "only lr_schedule='step' reads it", "set lr_schedule='step', or lr_steps=None"),
    Ignored("balanced_lr", lambda c: c.balanced_lr is not None, ("balanced_epochs",),
            lambda c: c.balanced_epochs == 0, "only the balanced stage reads it",
            "set balanced_epochs, or balanced_lr=None"),
)


def _rule(row):
    def message(c):
        others = " and ".join(f"{key}={getattr(c, key)!r}" for key in row.by)
        return f"{row.key}={getattr(c, row.key)!r} would be ignored with {others}: {row.why}; {row.fix}"

    return Rule((row.key, *row.by), lambda c: bool(row.on(c) and row.unread(c)), message)


IGNORED_RULES = tuple(_rule(row) for row in IGNORED)
