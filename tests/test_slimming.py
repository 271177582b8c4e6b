"""Network slimming (multi_label/slimming/, mode=prune): the plan, the thin model, its costs, the L1 penalty, a run.

The thin model must compute what the original computes once the removed channels are masked
(their BatchNorm gamma and beta set to 0, so they output 0): checked to 1e-5 on random images for
a basic-block ResNet, a bottleneck one, a grouped ResNeXt and MixNet-18.
"""

import dataclasses
import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from backbone import BACKBONES
from multi_label.model import ModelSettings, build_model
from multi_label.optim.weight_decay import apply_weight_decay
from multi_label.slimming.channels import kept_set, positions
from multi_label.slimming.costs import measure, multiply_accumulates, parameter_count
from multi_label.slimming.families import FAMILIES
from multi_label.slimming.plan import ChannelPlan, read_plan, select_channels, write_plan
from multi_label.slimming.pruning import choose_plan, pruned_model
from multi_label.slimming.sparsity import apply_slimming_l1
from utils.config import ConfigError
from utils.rules import PRUNABLE_BACKBONES

SIZE = 32


def images(n=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, SIZE, SIZE, 3)).astype("float32")


def randomised(model, seed=0):
    """Random BatchNorm scales, shifts and statistics (gammas in [0.5, 1.5]), so no branch is the identity."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n))
            layer.beta.assign(rng.normal(0.0, 0.2, n))
            layer.moving_mean.assign(rng.normal(0.0, 0.2, n))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, n))
    return model


def settings(backbone, width=0.25, **changes):
    return ModelSettings(backbone=backbone, backbone_width=width, **changes)


def builder(backbone, width, folder, num_classes=3):
    """ChannelPlan -> the model built with it, as mode=prune builds it (through a plan file)."""
    def build(plan):
        path = os.path.join(folder, "channels.json")
        write_plan(path, plan)
        return build_model(settings(backbone, width, pruned_channels=path), num_classes)
    return build


def masked(model, plan, current=None):
    """Sets gamma and beta of every channel the plan removes to 0: those channels then output 0."""
    for prunable in FAMILIES[plan.backbone].prunable(model):
        there = kept_set(current.channels if current else {}, plan.widths, prunable.conv)
        removed = positions(there, np.setdiff1d(there, kept_set(plan.channels, plan.widths, prunable.conv)))
        bn = model.get_layer(prunable.bn)
        for variable in (bn.gamma, bn.beta):
            value = variable.numpy()
            value[removed] = 0.0
            variable.assign(value)
    return model


# --- the plan -------------------------------------------------------------------------------

def test_global_threshold_on_hand_set_gammas():
    gammas = {"a": np.array([0.1, 0.5, 0.9, -0.2]), "b": np.array([0.05, -0.01]), "c": np.array([0.3, 0.7])}
    kept, threshold = select_channels(gammas, 0.5)  # 4 of 8 go: 0.01, 0.05, 0.1, 0.2 (|gamma|)
    assert threshold == pytest.approx(0.2)
    assert kept["a"].tolist() == [1, 2]
    assert kept["b"].tolist() == [0]  # both under the threshold: the larger |gamma| stays, one channel at least
    assert kept["c"].tolist() == [0, 1]


def test_grouped_layer_keeps_the_same_count_in_each_group():
    # 2 groups of 4; 3 of its 8 channels fall under the threshold -> round(5 / 2) = 2 per group, the largest
    gammas = {"g": np.array([0.9, 0.01, 0.8, 0.7, 0.02, 0.6, 0.03, 0.5]), "other": np.array([1.0, 1.0])}
    kept, _ = select_channels(gammas, 0.3, {"g": 2})
    assert kept["g"].tolist() == [0, 2, 5, 7]
    assert kept["other"].tolist() == [0, 1]


def test_plan_file_round_trips_and_a_bad_one_is_named(tmp_path):
    plan = ChannelPlan("resnet18", 0.25, {"resnet18_s1_b1_conv1": [0, 3]}, {"resnet18_s1_b1_conv1": 16})
    path = str(tmp_path / "channels.json")
    write_plan(path, plan)
    assert read_plan(path) == plan
    (tmp_path / "bad.json").write_text('{"backbone": "resnet18"}')
    with pytest.raises(ValueError, match="bad.json.*cannot be read.*expected the JSON that mode=prune writes"):
        read_plan(str(tmp_path / "bad.json"))


def test_prunable_backbones_are_the_families():
    assert set(PRUNABLE_BACKBONES) == set(FAMILIES) and set(FAMILIES) <= set(BACKBONES)


def test_resnet_prunes_only_inside_blocks():
    names = [p.conv for p in FAMILIES["resnet50"].prunable(build_model(settings("resnet50"), 3))]
    assert names[:2] == ["resnet50_s1_b1_conv1", "resnet50_s1_b1_conv2"] and len(names) == 2 * 16
    basic = FAMILIES["resnet18"].prunable(build_model(settings("resnet18"), 3))
    assert [(p.conv, p.bn, p.groups) for p in basic[:1]] == [("resnet18_s1_b1_conv1", "resnet18_s1_b1_bn1", 1)]
    assert len(basic) == 8
    grouped = FAMILIES["resnext18"].prunable(build_model(settings("resnext18"), 3))
    assert {p.groups for p in grouped} == {32}


# --- the thin model computes what the masked original does ------------------------------------

@pytest.mark.parametrize("backbone, width", [("resnet18", 0.25), ("resnet50", 0.25), ("resnext18", 0.25),
                                             ("mixnet18", 0.25), ("preact_resnet18", 0.25)])
def test_thin_model_equals_the_masked_original(backbone, width, tmp_path):
    original = randomised(build_model(settings(backbone, width), 3))
    plan, _ = choose_plan(original, backbone, width, 0.5)
    assert plan.channels
    if backbone == "resnext18":  # the grouped conv2 loses channels too, the same count in each group
        assert any(name.endswith("_conv2") for name in plan.channels)
    masked(original, plan)
    thin = pruned_model(original, plan, builder(backbone, width, str(tmp_path)))
    x = images()
    np.testing.assert_allclose(thin(x, training=False), original(x, training=False), atol=1e-5, rtol=1e-5)
    assert parameter_count(thin) < parameter_count(original)


def test_removed_channel_constant_is_folded_into_the_next_batch_norm(tmp_path):
    # gamma 0, beta != 0: the channel outputs ReLU(beta); conv3 is 1x1, so the fold into bn3 is exact
    original = randomised(build_model(settings("resnet50"), 3))
    widths = {p.conv: original.get_layer(p.conv).filters for p in FAMILIES["resnet50"].prunable(original)}
    conv2 = [name for name in widths if name.endswith("_conv2")]
    plan = ChannelPlan("resnet50", 0.25, {name: list(range(0, widths[name], 2)) for name in conv2}, widths)
    for name in conv2:
        bn = original.get_layer(name.replace("_conv2", "_bn2"))
        gamma = bn.gamma.numpy()
        gamma[1::2] = 0.0
        bn.gamma.assign(gamma)
    thin = pruned_model(original, plan, builder("resnet50", 0.25, str(tmp_path)))
    x = images()
    np.testing.assert_allclose(thin(x, training=False), original(x, training=False), atol=1e-5, rtol=1e-5)


def test_pruning_a_pruned_model_again(tmp_path):
    original = randomised(build_model(settings("mixnet18"), 3))
    first, _ = choose_plan(original, "mixnet18", 0.25, 0.3)
    masked(original, first)
    once = pruned_model(original, first, builder("mixnet18", 0.25, str(tmp_path / "a")))
    randomised(once, seed=1)  # new gammas to choose by; the scatter constants stay
    second, _ = choose_plan(once, "mixnet18", 0.25, 0.3, current=first)
    for conv, kept in second.channels.items():
        assert set(kept) <= set(kept_set(first.channels, first.widths, conv).tolist())
    masked(once, second, current=first)
    twice = pruned_model(once, second, builder("mixnet18", 0.25, str(tmp_path / "b")), current=first)
    x = images()
    np.testing.assert_allclose(twice(x, training=False), once(x, training=False), atol=1e-5, rtol=1e-5)


def test_a_plan_for_another_network_is_refused(tmp_path):
    path = str(tmp_path / "channels.json")
    write_plan(path, ChannelPlan("resnet18", 0.5, {}, {}))
    with pytest.raises(ConfigError, match="a plan for backbone='resnet18' at backbone_width=0.5; expected "
                                          "backbone='resnet18' at backbone_width=0.25"):
        build_model(settings("resnet18", pruned_channels=path), 3)
    write_plan(path, ChannelPlan("resnet18", 0.25, {"resnet18_s1_b1_conv2": [0]}, {"resnet18_s1_b1_conv2": 16}))
    with pytest.raises(ConfigError, match=r"channel_plan names \['resnet18_s1_b1_conv2'\], which are no prunable"):
        build_model(settings("resnet18", pruned_channels=path), 3)
    write_plan(path, ChannelPlan("resnext18", 0.25, {"resnext18_s2_b1_conv1": list(range(32))},
                                 {"resnext18_s2_b1_conv1": 64}))
    with pytest.raises(ConfigError, match="the same count in each of its 32 groups of 2"):
        build_model(settings("resnext18", pruned_channels=path), 3)


# --- what it saves ----------------------------------------------------------------------------

def test_macs_of_layers_counted_by_hand():
    inputs = keras.Input((None, None, 8))
    x = keras.layers.Conv2D(16, 3, padding="same", groups=4, use_bias=False)(inputs)  # 10*10*16 outputs * 3*3*2
    x = keras.layers.DepthwiseConv2D(5, strides=2, padding="same")(x)  # 5*5*16 outputs * 5*5
    x = keras.layers.Dense(7)(keras.layers.GlobalAveragePooling2D()(x))  # 16*7
    assert multiply_accumulates(keras.Model(inputs, x), 10) == 10 * 10 * 16 * 9 * 2 + 5 * 5 * 16 * 25 + 16 * 7


def test_parameters_and_macs_fall_by_the_removed_channels(tmp_path):
    # ResNet-18: each removed conv1 channel of a block with c_in inputs and c outputs takes 3*3*c_in weights
    # of conv1, its 4 BatchNorm numbers and 3*3*c weights of conv2, on the block's output grid (h, w).
    original = randomised(build_model(settings("resnet18"), 3))
    plan, _ = choose_plan(original, "resnet18", 0.25, 0.5)
    thin = pruned_model(original, plan, builder("resnet18", 0.25, str(tmp_path)))
    expected_parameters = expected_macs = removed = 0
    for conv, width in plan.widths.items():
        gone = width - len(kept_set(plan.channels, plan.widths, conv))
        layer, after = original.get_layer(conv), original.get_layer(conv.replace("_conv1", "_conv2"))
        side = SIZE // {"1": 4, "2": 8, "3": 16, "4": 32}[conv.split("_s")[1][0]]
        expected_parameters += gone * (9 * layer.kernel.shape[2] + 4 + 9 * after.kernel.shape[3])
        expected_macs += gone * side * side * 9 * (layer.kernel.shape[2] + after.kernel.shape[3])
        removed += gone
    assert removed == round(0.5 * sum(plan.widths.values()))
    assert parameter_count(original) - parameter_count(thin) == expected_parameters
    assert multiply_accumulates(original, SIZE) - multiply_accumulates(thin, SIZE) == expected_macs
    # the prunable layers hold most of a ResNet's cost: half their channels is a large share of the whole
    assert 0.25 < 1 - multiply_accumulates(thin, SIZE) / multiply_accumulates(original, SIZE) < 0.5


def test_measure_gives_each_model_its_own_figures_in_order():
    def network(filters):
        inputs = keras.Input((SIZE, SIZE, 3))
        x = keras.layers.Conv2D(filters, 3, padding="same")(inputs)
        return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))

    small, large = network(4), network(32)
    figures = measure([large, small], SIZE)
    assert [f["parameters"] for f in figures] == [parameter_count(large), parameter_count(small)]
    assert [f["macs"] for f in figures] == [multiply_accumulates(large, SIZE), multiply_accumulates(small, SIZE)]
    for entry in figures:
        assert entry["cpu_ms_batch1"] > 0
        assert entry["cpu_images_per_second_batch32"] == pytest.approx(32 * 1000.0 / entry["cpu_ms_batch32"])


@pytest.mark.parametrize("backbone", ["resnext18", "mixnet18"])
def test_pruned_model_round_trips_through_keras_file(backbone, tmp_path):
    original = randomised(build_model(settings(backbone), 3))
    plan, _ = choose_plan(original, backbone, 0.25, 0.5)
    thin = pruned_model(original, plan, builder(backbone, 0.25, str(tmp_path)))
    path = str(tmp_path / "model.keras")
    thin.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    x = images()
    np.testing.assert_array_equal(loaded(x, training=False), thin(x, training=False))


# --- sparsity training ------------------------------------------------------------------------

def test_slimming_l1_penalty_and_gradient_on_exactly_the_prunable_gammas():
    s, l2 = 1e-3, 2e-4
    model = randomised(build_model(settings("resnet50", slimming_l1=s), 3))
    apply_weight_decay(model, conv=0.0, bn_gamma=l2, verbose=False)  # as training does, after the model is built
    prunable = {p.bn for p in FAMILIES["resnet50"].prunable(model)}
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    gammas = {layer.name: layer.gamma.numpy().astype(np.float64) for layer in bns}
    expected = sum(s * np.abs(g).sum() * (name in prunable) + l2 * np.square(g).sum() for name, g in gammas.items())
    assert float(tf.add_n(model.losses)) == pytest.approx(expected, rel=1e-5)
    variables = [layer.gamma for layer in bns]
    with tf.GradientTape() as tape:
        penalty = tf.add_n(model.losses)
    for layer, gradient in zip(bns, tape.gradient(penalty, variables)):
        g = gammas[layer.name]
        np.testing.assert_allclose(gradient, s * np.sign(g) * (layer.name in prunable) + 2 * l2 * g, rtol=1e-5)
    # the L2 call keeps the L1, and so does a later L1 call the L2
    assert apply_slimming_l1(model, s, "resnet50", verbose=False) == len(prunable)
    assert float(tf.add_n(model.losses)) == pytest.approx(expected, rel=1e-5)


def test_slimming_l1_is_saved_with_the_model(tmp_path):
    model = build_model(settings("mixnet18", slimming_l1=1e-4), 3)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    regularizer = loaded.get_layer("mixnet18_s1_b1_bn1").gamma_regularizer
    assert isinstance(regularizer, keras.regularizers.L1) and float(regularizer.l1) == pytest.approx(1e-4)
    assert loaded.get_layer("mixnet18_s1_b1_mix3_bn").gamma_regularizer is None


# --- a whole run: sparsity training, mode=prune, fine-tuning, mode=convert --------------------

def run_py(monkeypatch, args):
    import run

    monkeypatch.setattr(sys, "argv", ["run.py", *args])
    return run.main(args)


@pytest.mark.slow
def test_train_prune_fine_tune_convert(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    common = ["demo_images=300", "image_size=32", "epochs=1", "backbone_width=0.25", "batch_size=32",
              "demo_data_dir='data'", "train_labels='data/train.csv'", "val_labels='data/val.csv'",
              "test_labels='data/test.csv'", "report=False", "warmup_epochs=0.0", "precision='float32'"]
    assert run_py(monkeypatch, [*common, "run_name='slim'", "slimming_l1=1e-4"]) == 0
    assert run_py(monkeypatch, [*common, "mode='prune'", "run_name='slim'", "prune_ratio=0.5"]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "models" / "slim" / "pruned-0.5"
    figures = json.loads((folder / "pruning.json").read_text())
    assert figures["after"]["parameters"] < figures["before"]["parameters"]
    assert figures["after"]["macs"] < figures["before"]["macs"]
    assert figures["before"]["test"] is not None and "test mAP" in out
    with pytest.raises(ConfigError, match="exists; choose another prune_dir"):
        run_py(monkeypatch, [*common, "mode='prune'", "run_name='slim'", "prune_ratio=0.5"])
    command = out.split("Fine-tune the pruned model")[1].splitlines()[1].split()
    assert command[:2] == ["python", "run.py"] and "pruned_channels=models/slim/pruned-0.5/channels.json" in command
    assert run_py(monkeypatch, [*common, *command[2:]]) == 0
    saved = json.loads((tmp_path / "models" / "slim-pruned-0.5" / "config.json").read_text())
    assert saved["pruned_channels"] == "models/slim/pruned-0.5/channels.json"
    assert run_py(monkeypatch, [*common, "mode='convert'", "run_name='slim-pruned-0.5'",
                                "formats=('keras', 'savedmodel')", "parity_images=20"]) == 0
    exported = keras.saving.load_model(str(tmp_path / "models" / "slim-pruned-0.5" / "export" / "model.keras"),
                                       compile=False)
    assert exported.get_layer("resnet18_s1_b1_conv1").filters < 16 or exported.get_layer(
        "resnet18_s4_b1_conv1").filters < 128


def test_settings_of_a_prune_run():
    from utils.config import load_config

    with pytest.raises(ConfigError, match="slimming_l1=0.001 with backbone='mobilenetv2': network slimming prunes"):
        load_config(["slimming_l1=1e-3", "backbone='mobilenetv2'"])
    with pytest.raises(ConfigError, match="prune_ratio=1.0 is out of range"):
        load_config(["mode='prune'", "prune_ratio=1.0"])
    assert dataclasses.asdict(load_config(["mode='prune'", "prune_ratio=0.3"]))["prune_ratio"] == 0.3


def test_the_pruned_files_appear_in_their_folder_only_once_all_are_written(tmp_path):
    from multi_label.tasks.prune import fresh_folder, move_files

    final = tmp_path / "pruned-0.5"
    (tmp_path / "pruned-0.5.partial").mkdir()
    (tmp_path / "pruned-0.5.partial" / "model.keras").write_text("from a failed attempt")
    work = fresh_folder(str(final) + ".partial")
    assert os.listdir(work) == []  # a failed attempt's leftovers are gone
    for name in ("model.keras", "channels.json", "pruning.json"):
        (tmp_path / "pruned-0.5.partial" / name).write_text(name)
    assert not final.exists()  # nothing there until every file is written
    move_files(work, str(final))
    assert sorted(os.listdir(final)) == ["channels.json", "model.keras", "pruning.json"]
    assert not os.path.exists(work)
