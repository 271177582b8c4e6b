"""The channel plan: which channels stay, chosen by one global threshold on |gamma|; its JSON file.

`select_channels` ranks every prunable channel of the network by the |gamma| of its BatchNorm,
marks the `ratio` share with the smallest ones (the channels under the global threshold, as in
the paper), and keeps the rest of each layer, at least one channel per layer; a layer whose
channels feed a grouped convolution keeps the same count in each group (the count the layer's
unmarked channels would give, rounded, at least one), the channels of highest |gamma| in each.

The plan file (mode=prune writes it, the `pruned_channels` setting reads it) is JSON:
{"backbone", "backbone_width", "channels": {conv: sorted kept indices into its unpruned
channels}, "widths": {conv: unpruned channels}} with every prunable convolution in "widths" and
only the pruned ones in "channels".
"""

import json
from typing import NamedTuple

import numpy as np

from utils.atomic import write_text


class ChannelPlan(NamedTuple):
    """A pruned network's channels (module docstring).

    Args:
        backbone: str. The backbone's registry name.
        backbone_width: float. Its width multiplier.
        channels: dict[str, list[int]]. Pruned convolution -> the sorted indices of its kept channels.
        widths: dict[str, int]. Every prunable convolution -> its unpruned channels.
    """

    backbone: str
    backbone_width: float
    channels: dict
    widths: dict


def select_channels(gammas, ratio, groups=None):
    """The channels kept by a global |gamma| threshold, per layer, and the threshold.

    Args:
        gammas: dict[str, np.ndarray]. Layer -> the gammas of its channels, in order.
        ratio: float. Share of all channels to remove, in (0, 1).
        groups: dict[str, int] or None. Layer -> groups its channels are kept equally in; missing: 1.

    Returns:
        (dict[str, np.ndarray], float). Layer -> sorted positions of its kept channels; the
        largest |gamma| marked for removal (0.0 when none is).
    """
    names = list(gammas)
    magnitudes = [np.abs(np.asarray(gammas[name], np.float64)) for name in names]
    values = np.concatenate(magnitudes)
    count = int(round(ratio * len(values)))
    order = np.argsort(values, kind="stable")
    marked = np.zeros(len(values), bool)
    marked[order[:count]] = True
    threshold = float(values[order[count - 1]]) if count else 0.0
    kept, start = {}, 0
    for name, magnitude in zip(names, magnitudes):
        gone = marked[start:start + len(magnitude)]
        start += len(magnitude)
        kept[name] = _kept(magnitude, gone, (groups or {}).get(name, 1))
    return kept, threshold


def _kept(magnitude, gone, groups):
    if groups == 1:
        kept = np.flatnonzero(~gone)
        return kept if len(kept) else np.array([int(np.argmax(magnitude))])
    size = len(magnitude) // groups
    each = max(1, int(round((len(magnitude) - gone.sum()) / groups)))
    # the `each` largest of every group, by position within the layer
    best = np.argsort(-magnitude.reshape(groups, size), axis=1, kind="stable")[:, :each]
    return np.sort((best + size * np.arange(groups)[:, None]).ravel())


def write_plan(path, plan):
    """Writes a `ChannelPlan` as JSON (module docstring)."""
    body = {"backbone": plan.backbone, "backbone_width": plan.backbone_width,
            "channels": {name: [int(i) for i in kept] for name, kept in plan.channels.items()},
            "widths": {name: int(width) for name, width in plan.widths.items()}}
    write_text(path, json.dumps(body, indent=1) + "\n")


def read_plan(path):
    """The `ChannelPlan` of a plan file; ValueError names the file and what was expected."""
    expected = ('expected the JSON that mode=prune writes: {"backbone", "backbone_width", "channels": {conv: '
                'kept indices}, "widths": {conv: channels}}')
    try:
        with open(path, encoding="utf-8") as f:
            body = json.load(f)
        plan = ChannelPlan(str(body["backbone"]), float(body["backbone_width"]),
                           {str(k): [int(i) for i in v] for k, v in body["channels"].items()},
                           {str(k): int(v) for k, v in body["widths"].items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"pruned_channels={path!r}: cannot be read ({type(error).__name__}: {error}); "
                         f"{expected}") from None
    unknown = sorted(set(plan.channels) - set(plan.widths))
    if unknown:
        raise ValueError(f"pruned_channels={path!r}: channels of {unknown} have no entry in widths; {expected}")
    return plan


def compose(current, kept_positions, widths):
    """The plan entries of a network pruned again: positions among its current channels -> unpruned indices.

    Args:
        current: dict[str, list[int]]. The current network's plan entries ({} when unpruned).
        kept_positions: dict[str, np.ndarray]. Layer -> positions kept among its current channels.
        widths: dict[str, int]. Every prunable convolution -> its unpruned channels.

    Returns:
        dict[str, list[int]]. The entries of every layer that keeps fewer than its unpruned channels.
    """
    composed = {}
    for name, width in widths.items():
        channels = np.asarray(current.get(name, range(width)))
        kept = channels[kept_positions[name]] if name in kept_positions else channels
        if len(kept) < width:
            composed[name] = [int(i) for i in kept]
    return composed
