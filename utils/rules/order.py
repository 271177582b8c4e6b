"""`RULES`: every rule between settings, in the order they are checked, and `broken_rule`.

utils/config.py calls `broken_rule` once, after every setting's type and range, before any data is read.
Builders do not check these again. The first broken rule is the one reported, so the order decides which
line a config that breaks several rules gets: combinations that cannot work, then settings that would be
ignored, then what a mode needs.
"""

from utils.rules.compatibility import COMPATIBILITY_RULES
from utils.rules.ignored import IGNORED_RULES
from utils.rules.modes import LABEL_ERROR_RULES, MODE_RULES

RULES = COMPATIBILITY_RULES + IGNORED_RULES + MODE_RULES + LABEL_ERROR_RULES


def broken_rule(config):
    """The message of the first rule that `config` breaks, or None when every rule holds."""
    for rule in RULES:
        if rule.broken(config):
            return rule.message(config)
    return None
