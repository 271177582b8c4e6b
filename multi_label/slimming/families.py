"""Which channels network slimming may remove, per backbone family: `FAMILIES`, backbone name -> `Family`.

A family answers three questions about a model of its backbones, all by layer name:

- `prunable(model)`: the convolutions whose output channels may go, each with the BatchNorm after
  it (whose gammas rank the channels) and the groups its channels are kept in (equal counts per
  group keep a grouped convolution grouped);
- `channel_sets(name, plan, widths)`: for a layer of a network built with `plan`, the channels of
  its output and input axes as indices into the unpruned network's channels (None: an axis that
  is never pruned), and the unpruned width of the input's channels;
- `finish(original, thin, current_plan, plan, widths)`: once the kept weights are copied from the
  network built with `current_plan` into the one built with `plan`, what the removed channels
  leave behind (their constant output, folded into what follows).

`widths` maps every prunable convolution to its unpruned filters; a plan maps the pruned ones to
the sorted indices of the channels kept.
"""

from collections.abc import Callable
from typing import NamedTuple

from backbone import BACKBONES, mixnet, resnet
from multi_label.slimming import mixnet_rules, resnet_rules


class Family(NamedTuple):
    """The pruning rules of one backbone family (module docstring)."""

    prunable: Callable
    channel_sets: Callable
    finish: Callable


RESNET = Family(resnet_rules.prunable, resnet_rules.channel_sets, resnet_rules.finish)
MIXNET = Family(mixnet_rules.prunable, mixnet_rules.channel_sets, mixnet_rules.finish)

# backbone -> its rules: every backbone that backbone/resnet.py or backbone/mixnet.py builds.
# utils/rules/names.py's PRUNABLE_BACKBONES names the same ones (tests/test_slimming.py).
FAMILIES = {name: family for name, (build, _) in BACKBONES.items()
            for builders, family in ((resnet.BUILDERS, RESNET), ({mixnet.NAME: mixnet.mixnet18}, MIXNET))
            if build is builders.get(name)}


def family_of(backbone):
    """The `Family` of a backbone name; ValueError names the prunable ones."""
    if backbone not in FAMILIES:
        raise ValueError(f"network slimming prunes the backbones {sorted(FAMILIES)}. Received: backbone={backbone!r}")
    return FAMILIES[backbone]
