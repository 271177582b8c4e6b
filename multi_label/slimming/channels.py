"""Channel index sets of a pruned network: the `Prunable` record and the index arithmetic shared by the rules.

Every set is sorted indices into the unpruned layer's channels. A network built with a plan holds,
in a planned layer, the channels of its plan entry; in any other, all of them. Pruning a network
again takes a subset of its sets, so a weight of the thinner network is found at the `positions`
of its channels among the current network's ones.
"""

from typing import NamedTuple

import numpy as np


class Prunable(NamedTuple):
    """A convolution whose output channels may be removed.

    Args:
        conv: str. The convolution's layer name (the key of its plan entry).
        bn: str. The BatchNorm after it, whose |gamma| ranks the channels.
        groups: int. Its channels are kept in equal counts over this many consecutive runs of
            channels (the groups of a grouped convolution they feed); 1: any count.
    """

    conv: str
    bn: str
    groups: int


def kept_set(plan, widths, conv):
    """The channels of `conv` in a network built with `plan`: its entry, else all `widths[conv]`."""
    return np.asarray(plan[conv] if conv in plan else range(widths[conv]), dtype=np.int64)


def positions(current, kept):
    """Where each channel of `kept` sits among `current` (both sorted unpruned indices); ValueError if absent."""
    current, kept = np.asarray(current, np.int64), np.asarray(kept, np.int64)
    found = np.searchsorted(current, kept)
    if len(kept) and (found.max() >= len(current) or not np.array_equal(current[found], kept)):
        raise ValueError(f"channels {sorted(set(kept.tolist()) - set(current.tolist()))} are not in the network "
                         "being pruned; a plan can only remove channels")
    return found


def group_coordinates(current, channels, width, groups):
    """(group, position within the group's channels of `current`) of each unpruned channel index.

    The unpruned `width` channels form `groups` consecutive groups; `current` holds the channels
    still there, in equal counts per group.
    """
    current, channels = np.asarray(current, np.int64), np.asarray(channels, np.int64)
    group = channels // (width // groups)
    return group, np.searchsorted(current, channels) - np.searchsorted(current, group * (width // groups))
