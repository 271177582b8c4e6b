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
    "image_size": (lambda v: v >= 32, "an integer >= 32 (pixels; the backbones downsample 32 times)"),
    "demo_images": (lambda v: v >= 10, "an integer >= 10"),
    "shuffle_buffer": (lambda v: v >= 1, "an integer >= 1"),
    "import_val_fraction": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
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
    "output": (lambda v: v == "" or os.path.splitext(v)[1].lower() in (".csv", ".json"),
               '"" or a file name ending in .csv or .json'),
    "report_examples": (lambda v: v >= 0, "an integer >= 0"),
    "report_max_classes": (lambda v: v >= 1, "an integer >= 1"),
    "formats": (lambda v: len(v) > 0 and all(f in ("keras", "savedmodel", "tflite_float32", "tflite_float16",
                                                   "tflite_dynamic_int8", "tflite_int8", "onnx") for f in v),
                "a non-empty list from keras, savedmodel, tflite_float32, tflite_float16, tflite_dynamic_int8, "
                "tflite_int8, onnx"),
    "parity_images": (lambda v: v >= 0, "an integer >= 0 (0: the whole test split)"),
    "calibration_images": (lambda v: v >= 1, "an integer >= 1"),
    "backbone_weights": (lambda v: v in ("", "none", "imagenet") or os.path.isfile(v),
                         '"none", "imagenet" or the path of an existing .keras, .weights.h5 or *_notop.h5 file'),
    "groups": (lambda v: v is None or (len(v) > 0 and all(isinstance(k, str) and k and isinstance(n, int)
                                                           and not isinstance(n, bool) and n >= 2
                                                           for k, n in v.items())),
               'None or {group name: number of classes >= 2}, e.g. {"colour": 12, "type": 6}'),
    "freeze_epochs": (lambda v: v >= 0, "an integer >= 0"),
    "backbone_lr_multiplier": (lambda v: v >= 0, "a number >= 0"),
    "csra_heads": (lambda v: v >= 1, "an integer >= 1"),
    "csra_temperatures": (lambda v: v is None or (len(v) > 0 and all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0 for t in v)),
        "None or a list of numbers > 0 (99 = max pooling), one per csra head"),
    "csra_lambda": (lambda v: v >= 0, "a number >= 0"),
    "label_embeddings": (lambda v: v == "" or os.path.isfile(v), '"" or the path of an existing GloVe-format text file'),
    "graph_hidden": (lambda v: v >= 1, "an integer >= 1"),
    "gcn_threshold": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "gcn_reweight": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "ssgrl_steps": (lambda v: v >= 1, "an integer >= 1"),
    "steps_per_execution": (lambda v: v >= 1, "an integer >= 1"),
    "save_every_steps": (lambda v: v >= 0, "an integer >= 0 (0: back up at epoch ends only)"),
    "hue_jitter": (lambda v: 0 <= v <= 0.5, "a number in [0, 0.5]"),
    "rotation": (lambda v: 0 <= v <= 180, "a number of degrees in [0, 180]"),
    "gaussian_noise": (lambda v: v >= 0, "a number >= 0 (pixel units)"),
    "salt_and_pepper": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "cutout": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "cutout_count": (lambda v: v >= 1, "an integer >= 1"),
    "multiscale_crop": (lambda v: v is None or (len(v) > 0 and all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and 0 < s <= 1 for s in v)),
        "None or a list of scales in (0, 1], e.g. (1.0, 0.875, 0.75, 0.66, 0.5)"),
    "mixup_alpha": (lambda v: v >= 0, "a number >= 0"),
    "cutmix_alpha": (lambda v: v >= 0, "a number >= 0"),
    "repeat_factor_threshold": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "randaugment_ops": (lambda v: v >= 0, "an integer >= 0 (0: off)"),
    "randaugment_magnitude": (lambda v: 0 <= v <= 10, "a number in [0, 10] (the paper's scale)"),
    "center_crop": (lambda v: 0 < v <= 1, "a number in (0, 1] (1.0: off)"),
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
    _check_model_choices(config)
    return config


def _check_model_choices(config):
    """Checks the backbone name against the registry and the settings that go with the head."""
    from backbone import BACKBONES  # imported here: it loads Keras, which the other checks do not need

    if config.backbone not in BACKBONES:
        close = difflib.get_close_matches(config.backbone, list(BACKBONES), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"backbone={config.backbone!r} is not allowed; expected one of {sorted(BACKBONES)}{hint}")
    if (config.head == "groups") != (config.groups is not None):
        raise ConfigError(f"head={config.head!r} with groups={config.groups!r}: head='groups' and a groups dict "
                          "({group: number of classes}) go together")
    if config.csra_temperatures is not None and len(config.csra_temperatures) != config.csra_heads:
        raise ConfigError(f"csra_temperatures={config.csra_temperatures!r} must list one temperature per head "
                          f"(csra_heads={config.csra_heads})")
    if config.csra_temperatures is None and config.csra_heads not in (1, 2, 4, 6, 8):
        raise ConfigError(f"csra_heads={config.csra_heads!r} has no temperature set in the paper; use 1, 2, 4, 6 or 8, "
                          "or list one temperature per head in csra_temperatures")


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


def reference_table():
    """The README's settings reference, generated from configs.py so the two never drift apart."""
    import inspect

    import configs

    rows = ["| setting | default | what it does |", "|---|---|---|"]
    for line in inspect.getsource(configs.Config).splitlines():
        stripped = line.strip()
        if stripped.startswith("# ---"):
            rows.append(f"| **{stripped.strip('# -')}** | | |")
            continue
        if ":" not in stripped or "#" not in stripped or stripped.startswith(("#", "class ", "@", '"')):
            continue
        code, comment = stripped.split("  # ", 1) if "  # " in stripped else (stripped, "")
        name = code.split(":", 1)[0].strip()
        default = code.split("=", 1)[1].strip() if "=" in code else ""
        rows.append(f"| `{name}` | `{default}` | {comment.replace('|', '/')} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(reference_table())
