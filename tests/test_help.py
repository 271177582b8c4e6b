"""Help: which arguments ask for it, the overview, each setting's entry read from configs.py."""

import ast
import dataclasses
import typing

import pytest

import run
from configs import Config
from utils.config import ConfigError, read_settings
from utils.help import help_topic, overview, setting_help, topic_help, type_text


@pytest.mark.parametrize("args, topic", [
    ([], None), (["epochs=5"], None), (["--help"], ""), (["-h"], ""), (["help"], ""), (["mode=test", "--help"], ""),
    (["help=lr"], "lr"), (["help='lr'"], "lr"), (["--help", "help=lr"], "lr"), (["help="], ""),
    (["helpful=1"], None), (["--helpme"], None),
])
def test_help_topic(args, topic):
    assert help_topic(args) == topic


def test_read_settings_has_every_setting_in_order_with_its_default_and_comment():
    settings = read_settings()
    assert list(settings) == [field.name for field in dataclasses.fields(Config)]
    hints = typing.get_type_hints(Config)
    for name, doc in settings.items():
        assert doc.hint == hints[name] and doc.comment and doc.section, name
        if name != "formats":  # a tuple of names spread over lines: its source is joined, as the README shows it
            assert ast.literal_eval(doc.default) == getattr(Config(), name), name
    assert settings["optimizer"].choices == ["sgd", "adam", "adamw", "radam", "lion"]
    assert settings["formats"].entries and "onnx" in settings["formats"].choices
    assert settings["lr"].section == "optimisation"
    assert settings["lr"].comment.startswith("Peak learning rate (after warmup). 4e-3 suits Adam")


@pytest.mark.parametrize("name, expected", [
    ("lr", "float"), ("crop_scale", "tuple or None"), ("clipnorm", "float or None"), ("mode", "one of the choices"),
    ("formats", "tuple of the entries below"), ("pos_weight", "any Python literal or None"), ("run_name", "str"),
])
def test_type_text(name, expected):
    assert type_text(typing.get_type_hints(Config)[name]) == expected


def test_every_setting_has_a_help_entry_with_its_comment():
    for name, doc in read_settings().items():
        text = setting_help(doc)
        assert text.startswith(f"{name} = {doc.default}\n  type:     "), name
        assert " ".join(text.split()).count(" ".join(doc.comment.split())) == 1, name
        assert all(choice in text for choice in doc.choices)


def test_overview_lists_the_modes_in_registry_order():
    text = overview(run.MODES)
    positions = [text.index(f"\n  {name} ") for name in run.MODES]
    assert positions == sorted(positions)
    assert text.count("python run.py mode=") == len(run.MODES) - 1  # train is the default: no mode= needed


def test_topic_help_refuses_an_unknown_name_with_a_hint():
    with pytest.raises(ConfigError, match=r"^unknown setting 'epoch' \(help=\); did you mean 'epochs'\?$"):
        topic_help("epoch", run.MODES)
    assert topic_help("convert", run.MODES).startswith("mode=convert: exports")
