"""Pruning a built model: the plan by one global |gamma| threshold, then the thinner model with the kept weights."""

import keras

from multi_label.slimming.families import family_of
from multi_label.slimming.plan import ChannelPlan, compose, select_channels
from multi_label.slimming.transfer import copy_weights


def unpruned_widths(model, backbone, current=None):
    """Every prunable convolution -> its unpruned channels: the current plan's, else the model's own filters."""
    if current is not None:
        return dict(current.widths)
    return {p.conv: model.get_layer(p.conv).filters for p in family_of(backbone).prunable(model)}


def choose_plan(model, backbone, backbone_width, ratio, current=None):
    """(ChannelPlan, threshold): the channels kept after removing the `ratio` share with the smallest |gamma|.

    Args:
        model: keras.Model. A model whose backbone `backbone` is a prunable one, trained with
            `slimming_l1` for best results.
        backbone: str. Its registry name.
        backbone_width: float. Its width.
        ratio: float. Share of the prunable channels (those of the model as it is) to remove.
        current: ChannelPlan or None. The plan the model was built with, when it is pruned already.
    """
    prunables = family_of(backbone).prunable(model)
    gammas = {p.conv: keras.ops.convert_to_numpy(model.get_layer(p.bn).gamma) for p in prunables}
    kept, threshold = select_channels(gammas, ratio, {p.conv: p.groups for p in prunables})
    widths = unpruned_widths(model, backbone, current)
    channels = compose(current.channels if current else {}, kept, widths)
    return ChannelPlan(backbone, backbone_width, channels, widths), threshold


def pruned_model(model, plan, build, current=None):
    """The thinner model of `plan`, built by `build(plan)`, with `model`'s weights of the channels kept.

    Args:
        model: keras.Model. The model being pruned.
        plan: ChannelPlan. The channels to keep (`choose_plan`).
        build: callable. ChannelPlan -> the same model built with the plan (fresh weights).
        current: ChannelPlan or None. The plan `model` was built with, when it is pruned already.
    """
    thin = build(plan)
    copy_weights(model, thin, family_of(plan.backbone), current.channels if current else {}, plan.channels,
                 plan.widths)
    return thin
