"""The checks utils/config.py applies at load time: each setting's range, and the rules between settings.

A rule stops the run with one line naming the settings, their values, why, and what to set.

- ranges.py: `LIMITS`, the range of each setting that its type cannot express.
- compatibility.py: head, loss, backbone, weights and schedule settings that cannot work together.
- ignored.py: settings that other settings leave unread ("X would be ignored with Y"), one table.
- modes.py: what a mode needs.
- names.py: the names the rules compare against; rule.py: `Rule`; order.py: `RULES` and `broken_rule`.
"""

from utils.rules.names import (
    CSRA_PAPER_HEADS,
    HUB_PREFIX,
    LABEL_GRAPH_HEADS,
    PARTIAL_LABEL_LOSSES,
    PRUNABLE_BACKBONES,
    TORCHVISION_BACKBONES,
)
from utils.rules.order import RULES, broken_rule
from utils.rules.ranges import LIMITS, choices_text
from utils.rules.rule import Rule

__all__ = ["CSRA_PAPER_HEADS", "HUB_PREFIX", "LABEL_GRAPH_HEADS", "LIMITS", "PARTIAL_LABEL_LOSSES",
           "PRUNABLE_BACKBONES", "RULES", "Rule", "TORCHVISION_BACKBONES", "broken_rule", "choices_text"]
