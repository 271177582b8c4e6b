"""Reads configs.py, a `config=path.py` file and `key=value` overrides into one checked Config.

Every problem stops the program before any work with one line naming the key, the value and what
is allowed.
"""

import ast
import dataclasses
import difflib
import json
import os
import runpy
import typing

from configs import Config
from utils.atomic import write_text


class ConfigError(ValueError):
    """A config setting that cannot be used; the message is one line for the user."""


# Range checks that the type alone cannot express: key -> (test, what is allowed).
LIMITS = {
    "lr": (lambda v: v > 0, "a number > 0"),
    "epochs": (lambda v: v >= 1, "an integer >= 1"),
    "batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "image_size": (lambda v: v >= 16, "an integer >= 16 (pixels)"),
    "demo_images": (lambda v: v >= 10, "an integer >= 10"),
    "shuffle_buffer": (lambda v: v >= 1, "an integer >= 1"),
    "warmup_epochs": (lambda v: v >= 0, "a number >= 0"),
    "weight_decay": (lambda v: v >= 0, "a number >= 0"),
    "dropout": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "threshold": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "color_jitter": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "backbone_width": (lambda v: v > 0, "a number > 0"),
    "crop_scale": (lambda v: v is None or (len(v) == 2 and 0 < v[0] <= v[1] <= 1),
                   "None or (min, max) with 0 < min <= max <= 1"),
    "crop_ratio": (lambda v: len(v) == 2 and 0 < v[0] <= v[1], "(min, max) with 0 < min <= max"),
    "pos_weight": (lambda v: v is None or v == "auto" or (
        isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) and x > 0 for x in v)),
        'None, "auto", or a list of positive numbers (one per class)'),
    "label_smoothing": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "focal_gamma": (lambda v: v >= 0, "a number >= 0"),
    "ghm_bins": (lambda v: v >= 1, "an integer >= 1"),
    "ghm_momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "asl_gamma_pos": (lambda v: v >= 0, "a number >= 0"),
    "asl_gamma_neg": (lambda v: v >= 0, "a number >= 0"),
    "asl_clip": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "beta_1": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "beta_2": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "epsilon": (lambda v: v > 0, "a number > 0"),
    "weight_decay_conv": (lambda v: v >= 0, "a number >= 0"),
    "weight_decay_bn_gamma": (lambda v: v >= 0, "a number >= 0"),
    "clipnorm": (lambda v: v is None or v > 0, "None or a number > 0"),
    "warmup_steps": (lambda v: v >= 0, "an integer >= 0"),
    "min_lr": (lambda v: v >= 0, "a number >= 0"),
    "lr_steps": (lambda v: v is None or all(isinstance(k, int) and k >= 0 and isinstance(x, (int, float)) and x > 0
                                            for k, x in v.items()),
                 "None or {epoch: lr multiplier}, e.g. {30: 0.1, 60: 0.01}"),
    "lr_decay_rate": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "plateau_factor": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "plateau_patience": (lambda v: v >= 1, "an integer >= 1"),
    "ema_decay": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "gradient_accumulation_steps": (lambda v: v >= 1, "an integer >= 1"),
    "base_batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "run_name": (lambda v: bool(v) and os.sep not in v and v not in (".", ".."),
                 "a non-empty folder name without '/'"),
}


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
    """Checks every setting's type, choices and range; raises ConfigError on the first bad one."""
    hints = typing.get_type_hints(Config)
    for field in dataclasses.fields(Config):
        value = getattr(config, field.name)
        setattr(config, field.name, _check_type(field.name, value, hints[field.name]))
        if field.name in LIMITS:
            test, allowed = LIMITS[field.name]
            try:
                ok = test(getattr(config, field.name))
            except (TypeError, AttributeError):
                ok = False
            if not ok:
                raise ConfigError(f"{field.name}={value!r} is out of range; expected {allowed}")
    return config


def save_config(config, path):
    """Writes the resolved config as JSON (atomically) so a run keeps the settings it ran with."""
    write_text(path, json.dumps(dataclasses.asdict(config), indent=2) + "\n")


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


def _set(config, key, value, source):
    names = [f.name for f in dataclasses.fields(Config)]
    if key not in names:
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else "; see configs.py for the settings"
        raise ConfigError(f"unknown setting {key!r} ({source}){hint}")
    setattr(config, key, value)


def _literal(raw):
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw  # a bare word such as mode=test is a string; the type check decides if that is allowed


def _check_type(key, value, hint):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:  # Optional[X]
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _check_type(key, value, inner)
    if origin is typing.Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1, cutoff=0.5)
            hint_text = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{key}={value!r} is not allowed; expected one of {list(args)}{hint_text}")
        return value
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


def _type_name(hint):
    return getattr(hint, "__name__", str(hint))
