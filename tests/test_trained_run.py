"""Loading a trained run: the checkpoint's outputs checked with one clear line, the run's own settings."""

import json

import keras
import pytest

from multi_label.trained_run import check_outputs, load_checkpoint, resolve_checkpoint, trained_setting
from utils.config import ConfigError


def tiny(outputs):
    """A model of a dense layer per output: {name: width} gives a groups-like dict of outputs, an int one output."""
    images = keras.Input((8, 8, 3))
    features = keras.layers.GlobalAveragePooling2D()(images)
    if isinstance(outputs, int):
        return keras.Model(images, keras.layers.Dense(outputs)(features))
    heads = {name: keras.layers.Dense(width, name=name)(features) for name, width in outputs.items()}
    return keras.Model(images, heads)


def test_outputs_are_checked_by_kind_and_count():
    check_outputs(tiny(3), "m.keras", 3, head="linear")
    check_outputs(tiny({"a": 2, "b": 3}), "g.keras")  # test mode with head='groups' loads any outputs
    check_outputs(tiny({"a": 2, "b": 3}), "g.keras", groups={"b": 3, "a": 2}, head="groups")  # in any order
    with pytest.raises(ConfigError, match=r"^checkpoint='m.keras' predicts 3 classes, but the label file has 4$"):
        check_outputs(tiny(3), "m.keras", 4)
    with pytest.raises(ConfigError, match=r"^checkpoint='g.keras' has a head='groups' \(one softmax per group\), "
                                          r"not the sigmoid outputs of head='csra'; use it with head='groups' and its "
                                          r"groups$"):
        check_outputs(tiny({"a": 2, "b": 3}), "g.keras", head="csra")
    with pytest.raises(ConfigError, match=r"^checkpoint='m.keras' has one sigmoid output per class \(3\), not "
                                          r"head='groups' \(one softmax per group\); use it with the head it was "
                                          r"trained with$"):
        check_outputs(tiny(3), "m.keras", groups={"a": 3}, head="groups")
    with pytest.raises(ConfigError, match=r"^checkpoint='g.keras' has the groups \{'a': 2, 'b': 3\}, but "
                                          r"groups=\{'a': 2, 'c': 3\}; expected the groups it was trained with$"):
        check_outputs(tiny({"a": 2, "b": 3}), "g.keras", groups={"a": 2, "c": 3}, head="groups")
    with pytest.raises(ConfigError, match=r"^checkpoint='g.keras' has a head='groups' \(one softmax per group\), "
                                          r"not 2 sigmoid outputs"):
        check_outputs(tiny({"a": 2, "b": 3}), "g.keras", 2)


def test_checkpoint_is_found_and_loaded_or_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^checkpoint='models/run/best.keras': model file not found"):
        resolve_checkpoint("", "run")
    (tmp_path / "models" / "run").mkdir(parents=True)
    tiny(3).save("models/run/best.keras")
    assert resolve_checkpoint("", "run") == "models/run/best.keras"
    assert load_checkpoint(resolve_checkpoint("", "run"), 3).output_shape == (None, 3)
    (tmp_path / "torn.keras").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match=r"^checkpoint='torn.keras' cannot be loaded: "):
        load_checkpoint("torn.keras")


def test_the_runs_own_setting_wins(tmp_path, capsys):
    checkpoint = str(tmp_path / "best.keras")
    assert trained_setting(checkpoint, "image_size", 64) == 64  # no config.json: the current value
    (tmp_path / "config.json").write_text(json.dumps({"image_size": 32}))
    assert trained_setting(checkpoint, "image_size", 64) == 32
    assert "image_size: 32 from" in capsys.readouterr().out
    assert trained_setting(checkpoint, "center_crop", 0.875) == 0.875  # a setting the run did not save
