"""`python run.py --help` and `python run.py help=<setting>`: the command, its modes and each setting, on screen.

Everything shown is read from where it is defined: the modes from run.py's MODES, each setting's
default, type, choices and comment from configs.py (`utils.config.read_settings`), its range from
`LIMITS`. Nothing here imports TensorFlow, so help is instant.
"""

import textwrap
import typing

from utils.config import LIMITS, read_settings, unknown_setting
from utils.console import VERBOSE_VARIABLE

HELP_WORDS = ("--help", "-h", "help")  # a bare argument that asks for the overview
HELP_KEY = "help"  # help=<setting> (or help=<mode>) asks for one entry

USAGE = "usage: python run.py [config=file.py] [key=value ...]"
INTRODUCTION = """\
Trains multi-label image classifiers (any number of labels per image; 1 present, 0 absent,
-1 unknown) and tests, labels, checks, converts with them. `mode` picks the job; every other
setting has a default in configs.py, so `python run.py` alone trains and tests on demo data."""
SETTINGS = f"""\
Settings:
  key=value        a Python literal: epochs=5 lr=3e-4 flip="horizontal" crop_scale=None
  config=file.py   a copy of configs.py (or a file of `key = value` lines), read first;
                   key=value arguments after it override it
  help=<setting>   one setting's default, type, choices and meaning, e.g. python run.py help=lr
  help=<mode>      one mode's summary and example, e.g. python run.py help=predict

Every setting: configs.py (each with its comment), or the settings reference in README.md.
TensorFlow's start-up notes are hidden; {VERBOSE_VARIABLE}=1 python run.py ... shows them."""


def help_topic(args):
    """What the arguments ask help for: None (no help), "" (the overview) or the name after `help=`.

    Args:
        args: list[str]. The command-line arguments, before any key=value parsing.
    """
    topic = None
    for arg in args:
        key, equals, value = arg.partition("=")
        if arg in HELP_WORDS:
            topic = topic or ""
        elif equals and key.strip() == HELP_KEY:
            return value.strip().strip("'\"")
    return topic


def overview(modes):
    """The text of `python run.py --help`.

    Args:
        modes: dict[str, Mode]. run.py's MODES; each entry has a one-line `summary` and an `example`.
    """
    width = max(len(name) for name in modes) + 2
    lines = [USAGE, "", INTRODUCTION, "", "Modes (mode=<name>; train is the default):"]
    for name, mode in modes.items():
        lines += [f"  {name:<{width}}{mode.summary}", f"  {'':<{width}}{mode.example}"]
    return "\n".join([*lines, "", SETTINGS])


def topic_help(topic, modes):
    """The text of `python run.py help=<topic>`: a setting's entry, or a mode's.

    Raises ConfigError for a name that is neither, with the closest one as a hint.
    """
    settings = read_settings()
    if topic in settings:
        return setting_help(settings[topic])
    if topic in modes:
        mode = modes[topic]
        return (f"mode={topic}: {mode.summary}\n  {mode.example}\n\n"
                "python run.py --help lists every mode and how settings are given")
    raise unknown_setting(topic, "help=", others=list(modes))


def setting_help(doc):
    """One setting as `help=<setting>` shows it: default, type, choices, range, section and comment.

    Args:
        doc: SettingDoc. The setting, as `read_settings` reads it from configs.py.
    """
    lines = [f"{doc.name} = {doc.default}", f"  type:     {type_text(doc.hint)}"]
    if doc.choices:
        lines.append(f"  {'entries:' if doc.entries else 'choices:'}  {', '.join(doc.choices)}")
    if doc.name in LIMITS:
        lines.append(f"  allowed:  {LIMITS[doc.name][1]}")
    lines.append(f"  section:  {doc.section}")
    comment = textwrap.fill(doc.comment or "(no comment in configs.py)", 98, initial_indent="  ",
                            subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)
    lines += ["", comment, "",
              f"Set it with: python run.py {doc.name}=<value> (or in a config=file.py)"]
    return "\n".join(lines)


def type_text(hint):
    """A type annotation as a user reads it: 'float', 'int or None', 'one of the choices', 'tuple of str'."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return " or ".join([type_text(a) for a in inner] + ["None"] * (len(inner) < len(args)))
    if origin is typing.Literal:
        return "one of the choices"
    if origin is tuple and args:
        return f"tuple of {'the entries below' if typing.get_origin(args[0]) is typing.Literal else type_text(args[0])}"
    if hint is object:
        return "any Python literal"
    return getattr(hint, "__name__", str(hint))

