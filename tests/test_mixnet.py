"""MixNet-18 (backbone/mixnet.py): sizes, widths and the 8:4:2:2 split, the parameter count of the
spec, training through build_model, `.keras` round trips, and pruned blocks (`channel_plan`)."""

import re

import keras
import numpy as np
import pytest

from backbone.mixnet import ChannelScatter, block_layout, mix_split, mixnet18
from multi_label.model import ModelSettings, backbone_layers, backbone_name, build_model
from utils.config import ConfigError, load_config

KERNELS = (3, 5, 7, 9)
SHARES = (8, 4, 2, 2)  # of 16, the spec's split


def backbone(width, channel_plan=None):
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, mixnet18(inputs, width=width, channel_plan=channel_plan))


def images(size, n=2, seed=0):
    return np.random.default_rng(seed).normal(0, 1, (n, size, size, 3)).astype("float32")


def mix_kernels(model, prefix):
    """{kernel size: depthwise kernel shape} of a block's mixed convolution."""
    return {k: tuple(model.get_layer(f"{prefix}_mix{k}").kernel.shape)
            for k in KERNELS if f"{prefix}_mix{k}" in {layer.name for layer in model.layers}}


@pytest.mark.parametrize("width", [0.125, 0.25])
def test_builds_at_two_sizes_and_two_widths_with_the_split(width):
    model = backbone(width)
    for size in (32, 64):
        assert model(images(size)).shape == (2, size // 32, size // 32, int(512 * width))
    for stage, published in enumerate((64, 128, 256, 512)):
        for index in (1, 2):
            prefix = f"mixnet18_s{stage + 1}_b{index}"
            width_here = int(published * width)
            split = {k: width_here * share // 16 for k, share in zip(KERNELS, SHARES)}
            assert sum(split.values()) == width_here
            assert mix_kernels(model, prefix) == {k: (k, k, n, 1) for k, n in split.items()}
            assert model.get_layer(f"{prefix}_conv1").kernel.shape[-1] == width_here


def test_split_sums_to_the_channels_and_keeps_a_channel_per_kernel():
    for channels in range(4, 300):
        split = mix_split(channels)
        assert sum(split) == channels and min(split) >= 1, (channels, split)
        assert split[0] >= split[1] >= split[2] == split[3]
        if channels >= 16:  # within one channel of 8:4:2:2
            assert all(abs(n - channels * share / 16) <= 1 for n, share in zip(split, SHARES)), (channels, split)
    assert mix_split(64) == [32, 16, 8, 8] and mix_split(4) == [1, 1, 1, 1]
    assert [filters for _, filters, _ in block_layout(0.005)] == [4] * 8  # the smallest block still splits


def test_parameter_count_at_width_1_is_the_specs():
    bn = lambda c: 4 * c  # gamma, beta, moving mean, moving variance
    expected = 3 * 3 * 3 * 64 + bn(64)  # stem
    previous = 64
    for c in (64, 128, 256, 512):
        for _ in range(2):
            expected += 3 * 3 * previous * c + bn(c)  # conv1
            expected += sum(k * k * c * share // 16 + bn(c * share // 16) for k, share in zip(KERNELS, SHARES))
            if previous != c:  # 1x1 projection shortcut
                expected += previous * c + bn(c)
            previous = c
    assert expected == 4_963_392
    assert backbone(1.0).count_params() == expected


def test_depthwise_batch_norms_start_the_branch_as_identity():
    model = backbone(0.125)
    for prefix, _, _ in block_layout(0.125):
        for k in KERNELS:
            assert not np.any(model.get_layer(f"{prefix}_mix{k}_bn").gamma.numpy())
        assert np.all(model.get_layer(f"{prefix}_bn1").gamma.numpy() == 1)


def test_trains_through_build_model_and_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model(ModelSettings(backbone="mixnet18", backbone_width=0.25), num_classes=3)
    assert backbone_name(model) == "mixnet18"
    inside = {id(w) for layer in backbone_layers(model) for w in layer.weights}
    assert [w.path for w in model.weights if id(w) not in inside] == ["logits/kernel", "logits/bias"]
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 2, (8, 3)).astype("float32")
    before = [w.numpy().copy() for w in model.trainable_weights]
    # no XLA: compiling it would take longer than the steps (tracing alone is most of this test)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False,
                  loss=keras.losses.BinaryCrossentropy(from_logits=True))
    losses = [float(model.train_on_batch(x, y)) for _ in range(8)]
    assert losses[-1] < 0.5 * losses[0], losses
    moved = [not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights)]
    assert all(moved), [w.path for w, m in zip(model.trainable_weights, moved) if not m]
    path = str(tmp_path / "mixnet.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    for size in (32, 64):
        np.testing.assert_allclose(loaded(images(size), training=False), model(images(size), training=False),
                                   atol=1e-5)


def test_config_takes_mixnet18_at_any_width_and_no_torchvision_weights():
    assert load_config(["backbone='mixnet18'", "backbone_width=0.3"]).backbone == "mixnet18"
    with pytest.raises(ConfigError, match="backbone_weights='torchvision' with backbone='mixnet18'"):
        load_config(["backbone='mixnet18'", "backbone_weights='torchvision'", "backbone_width=1.0"])
    with pytest.raises(ConfigError, match="no ImageNet weights for backbone='mixnet18'"):
        load_config(["backbone='mixnet18'", "backbone_weights='imagenet'"])


# --- pruned blocks (channel_plan) --------------------------------------------------------------

def randomise(model, seed=0):
    """Random weights of a trained look: unit-variance convolutions, BatchNorms away from their start."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape, name = tuple(weight.shape), weight.path.rsplit("/", 1)[-1]
        if name == "kernel":
            fan_in = np.prod(shape[:-1]) if shape[-1] != 1 else np.prod(shape[:2])  # depthwise: [k, k, C, 1]
            value = rng.normal(0, 1 / np.sqrt(fan_in), shape)
        elif name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        else:  # beta, moving_mean
            value = rng.normal(0, 0.2, shape)
        weight.assign(value.astype("float32"))


def copy_pruned(full, pruned, plan):
    """Sets `pruned` from `full` as the module docstring says a pruner does, for channels zeroed in `full`.

    In `full`, each pruned conv1 channel gets bn1 gamma = beta = 0, so it is 0 after the ReLU; the
    pruned model keeps the other channels' weights and its scatter gives the depthwise BN's output
    for a zero input.
    """
    names = {layer.name for layer in full.layers}
    blocks = {name.removesuffix("_conv1"): kept for name, kept in plan.items()}
    for layer in pruned.layers:
        prefix = next((p for p in blocks if layer.name.startswith(p + "_")), None)
        if prefix is None or not layer.weights:
            if layer.weights:
                layer.set_weights(full.get_layer(layer.name).get_weights())
            continue
        kept, filters = np.asarray(blocks[prefix]), full.get_layer(f"{prefix}_conv1").kernel.shape[-1]
        starts = np.cumsum([0, *mix_split(filters)])
        suffix = layer.name[len(prefix) + 1:]
        source = full.get_layer(layer.name).get_weights() if layer.name in names else None
        if suffix == "conv1":
            layer.set_weights([source[0][..., kept]])
        elif suffix == "bn1":
            layer.set_weights([v[kept] for v in source])
        elif suffix.startswith("mix"):
            k = int(suffix[3:].removesuffix("_bn"))
            start, stop = starts[KERNELS.index(k)], starts[KERNELS.index(k) + 1]
            local = kept[(kept >= start) & (kept < stop)] - start
            layer.set_weights([source[0][:, :, local]] if suffix == f"mix{k}" else [v[local] for v in source])
        elif suffix == "scatter":
            constant = []
            for k in KERNELS:
                gamma, beta, mean, variance = full.get_layer(f"{prefix}_mix{k}_bn").get_weights()
                constant.append(beta - gamma * mean / np.sqrt(variance + 1e-5))
            layer.set_weights([np.concatenate(constant)])
        else:  # the shortcut
            layer.set_weights(source)
    for prefix, kept in blocks.items():  # zero the pruned channels of `full`
        bn1 = full.get_layer(f"{prefix}_bn1")
        gamma, beta, mean, variance = bn1.get_weights()
        pruned_channels = np.setdiff1d(np.arange(gamma.shape[0]), kept)
        gamma[pruned_channels], beta[pruned_channels] = 0, 0
        bn1.set_weights([gamma, beta, mean, variance])


def test_plan_keeping_every_channel_gives_the_unpruned_outputs():
    full = backbone(0.25)
    randomise(full)
    plan = {f"{prefix}_conv1": list(range(filters)) for prefix, filters, _ in block_layout(0.25)}
    pruned = backbone(0.25, plan)
    copy_pruned(full, pruned, plan)
    x = images(64)
    expected = full(x, training=False)
    assert np.abs(expected).mean() > 0.1  # the branches are not identities
    np.testing.assert_allclose(pruned(x, training=False), expected, atol=1e-5)


# s1_b1 keeps channels of every part; s2_b1 (32 channels: parts at 0, 16, 24, 28) loses its 7x7 part
PLAN = {"mixnet18_s1_b1_conv1": [0, 3, 7, 8, 10, 12, 14, 15],
        "mixnet18_s2_b1_conv1": [1, 2, 5, 16, 22, 29]}


def test_plan_dropping_channels_builds_smaller_kernels_and_matches_zeroed_channels():
    pruned = backbone(0.25, PLAN)
    assert pruned.get_layer("mixnet18_s1_b1_conv1").kernel.shape == (3, 3, 16, 8)
    # 16 channels: parts [0, 8), [8, 12), [12, 14), [14, 16)
    assert mix_kernels(pruned, "mixnet18_s1_b1") == {3: (3, 3, 3, 1), 5: (5, 5, 2, 1), 7: (7, 7, 1, 1),
                                                     9: (9, 9, 2, 1)}
    assert pruned.get_layer("mixnet18_s2_b1_conv1").kernel.shape == (3, 3, 16, 6)
    assert mix_kernels(pruned, "mixnet18_s2_b1") == {3: (3, 3, 3, 1), 5: (5, 5, 2, 1), 9: (9, 9, 1, 1)}
    assert pruned.get_layer("mixnet18_s2_b1_scatter").output.shape[-1] == 32
    assert "mixnet18_s1_b2_scatter" not in {layer.name for layer in pruned.layers}
    assert pruned.count_params() < backbone(0.25).count_params()
    # the contract end to end: the pruned net computes the full one with those channels zeroed
    full = backbone(0.25)
    randomise(full)
    copy_pruned(full, pruned, PLAN)
    x = images(64)
    np.testing.assert_allclose(pruned(x, training=False), full(x, training=False), atol=1e-5)


def test_planned_model_round_trips(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(mixnet18(inputs, 0.25, PLAN)))
    randomise(model)
    scatter = model.get_layer("mixnet18_s2_b1_scatter")
    assert [(w.path, w.trainable) for w in scatter.weights] == [("mixnet18_s2_b1_scatter/constant", False)]
    path = str(tmp_path / "pruned.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_array_equal(loaded.get_layer(scatter.name).constant.numpy(), scatter.constant.numpy())
    assert loaded.get_layer(scatter.name).get_config()["indices"] == PLAN["mixnet18_s2_b1_conv1"]
    np.testing.assert_allclose(loaded(images(64), training=False), model(images(64), training=False), atol=1e-5)


def test_channel_scatter_puts_channels_back_and_fills_constants():
    layer = ChannelScatter([0, 2, 3], 5)
    x = np.arange(2 * 3, dtype="float32").reshape(1, 1, 2, 3)
    layer.build(x.shape)
    layer.constant.assign([10.0, 11.0, 12.0, 13.0, 14.0])
    np.testing.assert_array_equal(layer(x), [[[[0, 11, 1, 2, 14], [3, 11, 4, 5, 14]]]])


@pytest.mark.parametrize("plan, message", [
    ({"mixnet18_s5_b1_conv1": [0]}, "channel_plan: 'mixnet18_s5_b1_conv1' is no block of mixnet18; expected conv1 "
                                    "names of ['mixnet18_s1_b1_conv1', 'mixnet18_s1_b2_conv1', "),
    ({"mixnet18_s1_b1_conv1": [3, 1]}, "channel_plan['mixnet18_s1_b1_conv1']=[3, 1]: expected sorted, distinct "
                                       "channel indices in [0, 16), at least one"),
    ({"mixnet18_s1_b1_conv1": [0, 16]}, "channel_plan['mixnet18_s1_b1_conv1']=[0, 16]: expected"),
    ({"mixnet18_s1_b1_conv1": []}, "channel_plan['mixnet18_s1_b1_conv1']=[]: expected"),
])
def test_bad_plan_is_one_clear_error(plan, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        backbone(0.25, plan)
    with pytest.raises(ValueError, match=re.escape("expected sorted, distinct channel indices in [0, 4)")):
        ChannelScatter([1, 1], 4)
