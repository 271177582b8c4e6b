"""Reads configs.py, a `config=path.py` file and `key=value` overrides into one checked Config.

Every problem stops the program before any work with one line naming the key, the value and what
is allowed.
"""

import ast
import dataclasses
import difflib
import inspect
import os
import runpy
import typing

import configs
from configs import Config
from utils.rules import LIMITS, broken_rule, choices_text

__all__ = ["LIMITS", "RENAMED", "ConfigError", "SettingDoc", "load_config", "read_settings", "reference_table",
           "renamed_settings", "unknown_setting", "validate"]


class ConfigError(ValueError):
    """A config setting that cannot be used; the message is one line for the user."""


def load_config(args):
    """Builds the Config from command-line arguments.

    Args:
        args: list[str]. `key=value` items; `config=path.py` first loads another config file.

    Returns:
        Config.
    """
    pairs = []
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r} is not key=value (e.g. epochs=5)")
        key, raw = arg.split("=", 1)
        pairs.append((key.strip(), raw))
    config = Config()
    for key, raw in pairs:
        if key == "config":
            config = _from_file(raw)
    for key, raw in pairs:
        if key != "config":
            _set(config, key, _literal(raw), source="command line")
    validate(config)
    return config


def validate(config):
    """Checks every setting's type and range, then the rules between settings (utils/rules/).

    Raises ConfigError on the first problem, before any data is read; returns `config`, with ints
    given for floats and lists given for tuples converted.
    """
    hints = typing.get_type_hints(Config)
    for field in dataclasses.fields(Config):
        value = getattr(config, field.name)
        checked = _check_type(field.name, value, hints[field.name])
        setattr(config, field.name, checked)
        if field.name in LIMITS:
            test, allowed = LIMITS[field.name]
            try:
                ok = test(checked)
            except (TypeError, AttributeError):
                ok = False
            if not ok:
                close = difflib.get_close_matches(str(value), _choices(hints[field.name])[0], n=1, cutoff=0.5)
                hint_text = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"{field.name}={value!r} is out of range; expected {allowed}{hint_text}")
    message = broken_rule(config)
    if message:
        raise ConfigError(message)
    return config


def _from_file(path):
    if not os.path.isfile(path):
        raise ConfigError(f"config={path!r}: file not found")
    try:
        namespace = runpy.run_path(path)
    except Exception as error:  # the user's file: any error in it is reported as theirs
        raise ConfigError(f"config={path!r}: cannot be read: {type(error).__name__}: {error}") from None
    config = Config()
    other = namespace.get("Config")
    if isinstance(other, type) and dataclasses.is_dataclass(other):
        for field in dataclasses.fields(other):
            _set(config, field.name, getattr(other(), field.name), source=path)
    else:  # a plain file of `key = value` lines
        for key, value in namespace.items():
            if not key.startswith("_") and not callable(value) and not isinstance(value, type(os)):
                _set(config, key, value, source=path)
    return config


# Settings renamed because the old name misled: old name -> new name. A config that uses an old
# name stops with one line naming the new one; a run folder saved under an old name still resumes.
RENAMED = {
    "weight_decay_conv": "l2_kernels",  # an L2 term in the loss, not the optimizer's decoupled weight_decay
    "weight_decay_bn_gamma": "l2_bn_gamma",
    "thresholds": "class_thresholds",  # beside `threshold`, the fixed value, it read as its plural
}


def _set(config, key, value, source):
    if key in RENAMED:
        raise ConfigError(f"setting {key!r} ({source}) is now called {RENAMED[key]!r}; write "
                          f"{RENAMED[key]}={value!r}")
    if key not in {f.name for f in dataclasses.fields(Config)}:
        raise unknown_setting(key, source)
    setattr(config, key, value)


def renamed_settings(saved):
    """`saved` (a run's saved settings dict) with every old setting name replaced by its new one."""
    return {RENAMED.get(key, key): value for key, value in saved.items()}


def unknown_setting(key, source, others=()):
    """The ConfigError for a key that is no setting, with the closest setting (or entry of `others`) as a hint.

    Args:
        key: str. The unknown name.
        source: str. Where it was given ("command line", a file, "help=").
        others: list[str]. More names that `key` may be close to (help= also takes mode names).
    """
    names = [f.name for f in dataclasses.fields(Config)] + list(others)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else "; see configs.py for the settings"
    return ConfigError(f"unknown setting {key!r} ({source}){hint}")


def _literal(raw):
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw  # a bare word such as mode=test is a string; the type check decides if that is allowed


def _check_type(key, value, hint):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:  # Optional[X], or Union[Literal[...], str] (a choice or a pattern)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for alternative in inner[1:]:
            try:
                return _check_type(key, value, alternative)
            except ConfigError:
                pass
        return _check_type(key, value, inner[0])  # the message of the main type
    if origin is typing.Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1, cutoff=0.5)
            hint_text = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{key}={value!r} is not allowed; expected one of {list(args)}{hint_text}")
        return value
    if origin is tuple and args:  # tuple[X, ...]: every entry is an X
        if not isinstance(value, (tuple, list)):
            raise ConfigError(f"{key}={value!r} has type {type(value).__name__}; expected tuple")
        return tuple(_check_entry(key, value, entry, args[0]) for entry in value)
    expected = origin or hint
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected in (tuple, list) and isinstance(value, (tuple, list)):
        return expected(value)
    if expected is bool and not isinstance(value, bool) or not isinstance(value, expected) or (
            expected is int and isinstance(value, bool)):
        raise ConfigError(
            f"{key}={value!r} has type {type(value).__name__}; expected {_type_name(hint)}")
    return value


def _check_entry(key, value, entry, hint):
    """One entry of a tuple setting `key=value`; the message names the whole setting."""
    if typing.get_origin(hint) is typing.Literal:
        if entry not in typing.get_args(hint):
            raise ConfigError(f"{key}={value!r} is out of range; expected {choices_text(hint)}")
        return entry
    try:
        return _check_type(key, entry, hint)
    except ConfigError:
        raise ConfigError(f"{key}={value!r} has an entry of type {type(entry).__name__}; expected tuple of "
                          f"{_type_name(hint)}") from None


def _type_name(hint):
    return getattr(hint, "__name__", str(hint))


class SettingDoc(typing.NamedTuple):
    """One setting as configs.py declares it.

    Args:
        name: str. The setting.
        default: str. The default as written in configs.py, on one line.
        hint: type. Its type annotation.
        comment: str. The comment block just above it, its lines joined with spaces.
        section: str. The `# --- section ---` it is in.
        choices: list[str]. The choices of a `Literal` type (or of a tuple's Literal entries); [] for others.
        entries: bool. True when `choices` are those of a tuple's entries.
    """

    name: str
    default: str
    hint: object
    comment: str
    section: str
    choices: list
    entries: bool


def read_settings():
    """{setting: SettingDoc} in the order of configs.py, read from its source and its types."""
    source = inspect.getsource(configs)
    lines = source.splitlines()
    page = next(node for node in ast.parse(source).body if isinstance(node, ast.ClassDef) and node.name == "Config")
    settings = {node.lineno: node for node in page.body if isinstance(node, ast.AnnAssign)}
    hints = typing.get_type_hints(Config)
    found, comment, section = {}, [], ""
    for number in range(page.lineno, page.end_lineno + 1):
        text = lines[number - 1].strip()
        if text.startswith("# ---"):
            section, comment = text.strip("# -"), []
        elif text.startswith("#"):
            comment.append(text.lstrip("#").strip())
        elif number in settings:
            node = settings[number]
            name = node.target.id
            choices, entries = _choices(hints[name])
            found[name] = SettingDoc(name, " ".join(ast.get_source_segment(source, node.value).split()), hints[name],
                                     " ".join(comment), section, choices, entries)
            comment = []
        elif not text:
            comment = []
    return found


def reference_table():
    """The README's settings reference, generated from configs.py so the two never drift apart.

    A setting's description is its comment (`read_settings`); the choices of a `Literal` type follow it.
    """
    rows = ["| setting | default | what it does |", "|---|---|---|"]
    section = None
    for doc in read_settings().values():
        if doc.section != section:
            section = doc.section
            rows.append(f"| **{section}** | | |")
        label = "Entries from" if doc.entries else "Choices"
        choices = [f"{label}: " + ", ".join(f"`{choice}`" for choice in doc.choices) + "."] if doc.choices else []
        what = " ".join([doc.comment] * bool(doc.comment) + choices).replace("|", "\\|")
        rows.append(f"| `{doc.name}` | `{doc.default}` | {what} |")
    return "\n".join(rows)


def _choices(hint):
    """(choices, entries): the choices of a Literal type, or of a tuple of Literal entries (entries=True); else []."""
    if typing.get_origin(hint) is typing.Union:
        hint = [a for a in typing.get_args(hint) if a is not type(None)][0]
    entries = typing.get_origin(hint) is tuple and bool(typing.get_args(hint))
    if entries:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) is not typing.Literal:
        return [], False
    return [str(choice) for choice in typing.get_args(hint)], entries


if __name__ == "__main__":
    print(reference_table())
