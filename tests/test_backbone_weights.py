"""Backbone weights from another model's file: all of the backbone or nothing, the head only for the same classes."""

import json
import os
import shutil

import h5py
import keras
import numpy as np
import pytest
from tiny_run import tiny_config

import multi_label.tasks.train as train_module
from multi_label import trained_run
from multi_label.backbone_weights import CLASSES_FILE, backbone_layers, load_backbone_weights
from multi_label.model import ModelSettings, build_model
from utils.config import ConfigError
from utils.run_folder import run_folders

CLASSES = ["cat", "dog", "bird"]


def tiny(**changes):
    return ModelSettings(**{"backbone": "resnet18", "backbone_width": 0.25, "image_size": 32, **changes})


def fresh(seed=1, classes=3, **changes):
    keras.utils.set_random_seed(seed)
    return build_model(tiny(**changes), classes)


def values(model):
    return {variable.path: np.array(variable) for variable in model.weights}


def head_values(model):
    ours = {layer.name for layer in backbone_layers(model)}
    return {variable.path: np.array(variable) for layer in model.layers if layer.name not in ours
            for variable in layer.weights}


def assert_same(a, b):
    assert a.keys() == b.keys() and a
    for path in a:
        np.testing.assert_array_equal(a[path], b[path], err_msg=path)


def assert_differ(a, b):
    """Some variable of `a` differs from `b`'s of the same path: a copy from one to the other would be seen."""
    assert any(path in b and not np.array_equal(a[path], b[path]) for path in a), "the models start alike"


def backbone_values(model):
    return {variable.path: np.array(variable) for layer in backbone_layers(model) for variable in layer.weights}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A resnet18 width-0.25 model saved as .keras and .weights.h5 in a folder without classes.json."""
    folder = tmp_path_factory.mktemp("source")
    model = fresh(seed=0)
    model.save(str(folder / "best.keras"))
    model.save_weights(str(folder / "model.weights.h5"))
    return model, folder


def copy_to(folder, source_folder, name, classes=None):
    """The source file `name` in its own `folder`, with a classes.json listing `classes` (None: none)."""
    folder.mkdir()
    path = str(folder / name)
    shutil.copy(str(source_folder / name), path)
    if classes is not None:
        (folder / CLASSES_FILE).write_text(json.dumps(classes))
    return path


def failure(model, path, class_names=None):
    """The one-line message of a failed load, after checking that no variable of `model` changed."""
    before = values(model)
    with pytest.raises(ConfigError) as error:
        load_backbone_weights(model, path, class_names=class_names)
    assert_same(values(model), before)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"backbone_weights={path!r}: ")
    return message


@pytest.mark.parametrize("name", ["best.keras", "model.weights.h5"])
def test_the_same_architecture_loads_every_backbone_variable(source, name, capsys):
    model, folder = source
    target = fresh(seed=1)
    head = head_values(target)
    assert_differ(backbone_values(target), backbone_values(model))
    assert_differ(head, head_values(model))
    load_backbone_weights(target, str(folder / name), class_names=CLASSES)
    for layer in backbone_layers(target):
        for a, b in zip(layer.weights, model.get_layer(layer.name).weights, strict=True):
            np.testing.assert_array_equal(np.array(a), np.array(b), err_msg=a.path)
    assert_same(head_values(target), head)  # no classes.json beside it: the head starts fresh
    assert (f"backbone_weights={str(folder / name)!r}: the head starts fresh (no classes.json beside the file); "
            "only the backbone is loaded") in capsys.readouterr().out


@pytest.mark.parametrize("name", ["best.keras", "model.weights.h5"])
@pytest.mark.parametrize("changes, expected", [
    ({"backbone_width": 0.5}, "backbone layer 'resnet18_stem_conv' has shapes [(7, 7, 3, 16)] in the file, [(7, 7, "
                              "3, 32)] here (expected a model with backbone='resnet18' at this backbone_width)"),
    ({"backbone": "resnet34"}, "backbone layer 'resnet34_stem_conv' is missing in the file"),
])
def test_another_backbone_or_width_stops_with_one_line_and_changes_nothing(source, name, changes, expected):
    message = failure(fresh(**changes), str(source[1] / name))
    assert expected in message


@pytest.mark.parametrize("name", ["best.keras", "model.weights.h5"])
def test_another_head_for_the_same_classes_loads_the_backbone_and_starts_the_head_fresh(source, tmp_path, name,
                                                                                         capsys):
    model, folder = source
    path = copy_to(tmp_path / "run", folder, name, CLASSES)
    for changes, why in [({"head": "csra"}, "head layer 'csra' is missing in the file"),
                         # the same head with other settings: pooled avg+max, its layer reads twice the channels
                         ({"pooling": "avg+max"}, "head layer 'logits' has shapes [(128, 3), (3,)] in the file, "
                                                  "[(256, 3), (3,)] here")]:
        target = fresh(seed=1, **changes)
        head = head_values(target)
        assert_differ(backbone_values(target), backbone_values(model))
        load_backbone_weights(target, path, class_names=CLASSES)
        for layer in backbone_layers(target):
            for a, b in zip(layer.weights, model.get_layer(layer.name).weights, strict=True):
                np.testing.assert_array_equal(np.array(a), np.array(b), err_msg=a.path)
        assert_same(head_values(target), head)
        out = capsys.readouterr().out
        assert f"the head starts fresh (the same classes, another head: {why.split('head ', 1)[1]}" in out, out


def test_a_file_lacking_a_backbone_layer_names_it(source, tmp_path):
    path = copy_to(tmp_path / "run", source[1], "model.weights.h5")
    with h5py.File(path, "a") as f:
        key = next(key for key, group in f["layers"].items() if group["vars"].attrs["name"] == "resnet18_s2_b1_conv1")
        del f["layers"][key]
    message = failure(fresh(), path, CLASSES)
    assert "backbone layer 'resnet18_s2_b1_conv1' is missing in the file" in message


def test_a_file_with_a_backbone_layer_this_model_lacks_names_it(source, tmp_path):
    path = copy_to(tmp_path / "run", source[1], "model.weights.h5")
    with h5py.File(path, "a") as f:
        key = next(key for key, group in f["layers"].items() if group["vars"].attrs["name"] == "resnet18_s4_b2_conv2")
        f.copy(f["layers"][key], f["layers"], name="conv2d_99")
        f["layers/conv2d_99/vars"].attrs["name"] = "resnet18_s4_b3_conv1"
    message = failure(fresh(), path)
    assert "backbone layer 'resnet18_s4_b3_conv1' of the file is not in this model" in message


@pytest.mark.parametrize("name", ["best.keras", "model.weights.h5"])
def test_head_copied_only_when_classes_json_beside_names_the_same_classes(source, tmp_path, name, capsys):
    model, folder = source
    same = copy_to(tmp_path / "same", folder, name, CLASSES)
    target = fresh()
    assert_differ(head_values(target), head_values(model))
    load_backbone_weights(target, same, class_names=CLASSES)
    assert_same(head_values(target), head_values(model))
    assert "head starts fresh" not in capsys.readouterr().out

    other = copy_to(tmp_path / "other", folder, name, ["cat", "dog", "fish"])
    for class_names, why in [(CLASSES, f"{tmp_path / 'other' / CLASSES_FILE} names other classes: 'fish' there, "
                                        "'bird' here"),
                             (None, "this model's class names were not given")]:
        target = fresh()
        head = head_values(target)
        load_backbone_weights(target, other, class_names=class_names)
        assert_same(head_values(target), head)
        assert f"backbone_weights={other!r}: the head starts fresh ({why}); only the backbone is loaded" in (
            capsys.readouterr().out)
        np.testing.assert_array_equal(np.array(target.get_layer("resnet18_stem_conv").kernel),
                                      np.array(model.get_layer("resnet18_stem_conv").kernel))


def test_build_model_passes_the_class_names_on(source, tmp_path):
    model, folder = source
    path = copy_to(tmp_path / "run", folder, "best.keras", CLASSES)
    keras.utils.set_random_seed(1)
    target = build_model(tiny(backbone_weights=path), 3, class_names=CLASSES)
    assert_same(values(target), values(model))  # backbone and head: the whole model


def test_a_broken_or_foreign_file_gets_one_line(tmp_path):
    broken = tmp_path / "broken.weights.h5"
    broken.write_bytes(b"not HDF5")
    assert "cannot be read (OSError" in failure(fresh(), str(broken))
    empty = tmp_path / "empty.weights.h5"
    with h5py.File(str(empty), "w") as f:
        f.create_group("vars")
    assert "holds no model's layers; expected a .keras or .weights.h5 file saved by Keras 3" in failure(fresh(),
                                                                                                      str(empty))
    zipped = tmp_path / "other.keras"
    shutil.make_archive(str(tmp_path / "other"), "zip", str(tmp_path), "broken.weights.h5")
    (tmp_path / "other.zip").rename(zipped)
    assert "holds no model.weights.h5" in failure(fresh(), str(zipped))
    (tmp_path / CLASSES_FILE).write_text('{"cat": 1}')
    model = fresh()
    with pytest.raises(ConfigError, match=r"classes.json: expected a JSON list of class names, got dict$"):
        load_backbone_weights(model, str(empty), class_names=CLASSES)


def test_the_classes_file_is_the_one_training_writes(data_dir, tmp_path, monkeypatch, capsys):
    """A run folder as training leaves it (classes.json, then best.keras) gives its head to a model of its classes."""
    monkeypatch.chdir(tmp_path)
    given = {}

    class Stopped(Exception):
        """train() stopped where it builds the model: it has written classes.json, nothing more is needed."""

    def stop(settings, num_classes, **options):
        given.update(options, num_classes=num_classes)
        raise Stopped

    monkeypatch.setattr(train_module, "build_model", stop)
    with pytest.raises(Stopped):
        train_module.train(tiny_config(data_dir, run_name="classes", test_labels=""))
    class_names = given["class_names"]  # as train() gives them to build_model, which passes them on here
    assert len(class_names) == given["num_classes"] > 1
    # the run's best.keras, where mode=test looks for it (models/<run_name>/best.keras)
    path = os.path.join(run_folders("classes")[0], trained_run.BEST_FILE)
    assert not os.path.exists(path)
    model = fresh(seed=0, classes=len(class_names))
    model.save(path)
    target = fresh(seed=1, classes=len(class_names))
    assert_differ(head_values(target), head_values(model))
    load_backbone_weights(target, path, class_names=class_names)
    assert_same(values(target), values(model))  # backbone and head
    assert "head starts fresh" not in capsys.readouterr().out
    assert trained_run.saved_class_names(path) == class_names  # and mode=test/predict read the same file


@pytest.mark.slow  # three keras.applications models (about 15 s on two CPU cores)
def test_a_nested_backbone_loads_whole_or_names_its_inner_layer(tmp_path):
    def mobilenet(width):
        keras.utils.set_random_seed(int(width * 100))
        return build_model(ModelSettings(backbone="mobilenetv3_small", backbone_width=width, image_size=32), 3)

    model = mobilenet(0.75)
    path = str(tmp_path / "model.weights.h5")
    model.save_weights(path)
    message = failure(mobilenet(1.0), path)
    assert "backbone layer 'mobilenetv3_small' (its layer '" in message and "in the file, [(" in message
    target = mobilenet(0.75)
    load_backbone_weights(target, path)
    assert_same({v.path: np.array(v) for v in target.get_layer("mobilenetv3_small").weights},
                {v.path: np.array(v) for v in model.get_layer("mobilenetv3_small").weights})
