"""`Rule`: settings that do not go together, and how its one line lists names."""

from collections.abc import Callable
from typing import NamedTuple


class Rule(NamedTuple):
    """Settings that do not go together: `broken(config)` is True for a combination that cannot be used.

    Args:
        keys: tuple[str]. The settings the rule is about.
        broken: callable. config -> bool.
        message: callable. config -> the one line for the user, naming the settings and the fix.
    """

    keys: tuple
    broken: Callable
    message: Callable


def either(words):
    """'a, b or c'."""
    words = list(words)
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]


def either_name(names):
    """"'a', 'b' or 'c'": names quoted as a setting's value is."""
    return either(repr(name) for name in names)
