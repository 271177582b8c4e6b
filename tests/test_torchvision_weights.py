"""torchvision's ImageNet weights (backbone/torchvision_weights.py) and the symmetric padding of backbone/resnet.py.

Without torch: the conversion of a hand-made state dict, its errors, the cached file, the config
rules and the padding. With torch and torchvision (not requirements; skipped without them):
torchvision's networks with random weights give our features.
"""

import math
import re
import sys
import types
import typing
import urllib.error

import keras
import numpy as np
import pytest
from optional import optional_import

import configs
from backbone import BACKBONES
from backbone import torchvision_weights as tw
from multi_label.model import ModelSettings, backbone_layers, build_model
from utils.config import ConfigError, load_config
from utils.rules import TORCHVISION_BACKBONES

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])  # torchvision's ImageNet transform
TORCH_PART = {"stem_conv": "conv1", "stem_bn": "bn1", "down_conv": "downsample.0", "down_bn": "downsample.1"}
DOWNLOAD = tw.download_state_dict  # the real one; the `cache` fixture replaces it in every test


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """An empty Keras cache in tmp_path, and no download: a test that needs one replaces `download_state_dict`."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def no_download(name):
        raise AssertionError(f"the state dict of {name} was asked for")

    monkeypatch.setattr(tw, "download_state_dict", no_download)
    return tmp_path


def torch_module(layer, name):
    """torchvision's module name of our layer: resnet18_s2_b1_down_conv -> layer2.0.downsample.0."""
    part = layer[len(name) + 1:]
    if part.startswith("stem_"):
        return TORCH_PART[part]
    stage, block, rest = re.fullmatch(r"s(\d)_b(\d+)_(\w+)", part).groups()
    return f"layer{stage}.{int(block) - 1}.{TORCH_PART.get(rest, rest)}"


def fake_state_dict(name="resnet18", seed=0):
    """A torchvision-layout state dict of random NumPy arrays, shaped from our width-1.0 variables."""
    rng = np.random.default_rng(seed)
    state = {"fc.weight": rng.normal(size=(1000, 512)), "fc.bias": rng.normal(size=1000)}
    for layer in tw.weighted_layers(tw.standalone_backbone(name)):
        module = torch_module(layer.name, name)
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, inputs, outputs = layer.kernel.shape
            state[f"{module}.weight"] = rng.normal(size=(outputs, inputs, kh, kw)).astype("float32")
        else:
            for tensor in tw.BN_TENSORS:
                state[f"{module}.{tensor}"] = rng.uniform(0.5, 1.5, layer.gamma.shape).astype("float32")
            state[f"{module}.num_batches_tracked"] = np.array(7)
    return state


def torchvision_model(name, seed=0):
    settings = ModelSettings(backbone=name, backbone_width=1.0, backbone_weights="torchvision")
    keras.utils.set_random_seed(seed)
    return build_model(settings, num_classes=3)


def test_conversion_sets_each_variable_to_the_transposed_array(cache, monkeypatch):
    state = fake_state_dict()
    monkeypatch.setattr(tw, "download_state_dict", lambda name: state)
    model = torchvision_model("resnet18")
    for layer, module in [("resnet18_stem_conv", "conv1"), ("resnet18_s1_b2_conv2", "layer1.1.conv2"),
                          ("resnet18_s3_b1_down_conv", "layer3.0.downsample.0")]:
        np.testing.assert_array_equal(model.get_layer(layer).kernel, state[f"{module}.weight"].transpose(2, 3, 1, 0))
    for layer, module in [("resnet18_stem_bn", "bn1"), ("resnet18_s2_b1_bn2", "layer2.0.bn2"),
                          ("resnet18_s4_b1_down_bn", "layer4.0.downsample.1")]:
        bn = model.get_layer(layer)
        for variable, tensor in [(bn.gamma, "weight"), (bn.beta, "bias"), (bn.moving_mean, "running_mean"),
                                 (bn.moving_variance, "running_var")]:
            np.testing.assert_array_equal(variable, state[f"{module}.{tensor}"])
    path = cache / "models" / "torchvision_resnet18_IMAGENET1K_V1.weights.h5"
    assert tw.converted_file("resnet18") == str(path) and path.is_file()
    # a second model loads the converted file: no state dict, no torch
    monkeypatch.setattr(tw, "download_state_dict", lambda name: pytest.fail("converted again"))
    again = torchvision_model("resnet18", seed=1)
    for layer in backbone_layers(model):
        for a, b in zip(layer.get_weights(), again.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(model.get_layer("logits").kernel, again.get_layer("logits").kernel)  # heads: their own


def test_every_tensor_has_its_layer_and_shape(monkeypatch, cache):
    layers = tw.weighted_layers(tw.standalone_backbone("resnet18"))
    cases = [
        ("layer1.0.conv1.weight", None, "torchvision resnet18: layer 'resnet18_s1_b1_conv1' gets no weights from the "
                                        "state dict"),
        ("bn1.running_var", None, "torchvision resnet18: layer 'resnet18_stem_bn' gets no running_var from the state "
                                  "dict"),
        ("layer2.0.conv2.weight", np.zeros((128, 128, 1, 1), "float32"),
         "torchvision resnet18: layer 'resnet18_s2_b1_conv2' (kernel) has shape (3, 3, 128, 128); the state dict "
         "gives (1, 1, 128, 128) (in Keras order)"),
        ("layer5.0.conv1.weight", np.zeros((8, 8, 3, 3), "float32"),
         "torchvision resnet18: the state dict's layer 'resnet18_s5_b1_conv1' has no place in our backbone"),
        ("layer1.0.se.weight", np.zeros(3), "torchvision resnet18: unknown tensor 'layer1.0.se.weight' in the state "
                                            "dict; expected torchvision's ResNet layout (conv1, bn1, layer<S>.<B>."
                                            "conv<K> / bn<K> / downsample, fc)"),
    ]
    for key, value, expected in cases:
        state = fake_state_dict()
        if value is None:
            del state[key]
        else:
            state[key] = value
        with pytest.raises(ValueError) as error:
            tw.set_converted_weights(layers, tw.convert_state_dict(state, "resnet18"), "torchvision resnet18",
                                     "the state dict")
        assert str(error.value) == expected
    monkeypatch.setattr(tw, "download_state_dict", lambda name: state)  # the last, broken one
    with pytest.raises(ConfigError, match="^torchvision resnet18: unknown tensor 'layer1.0.se.weight'"):
        torchvision_model("resnet18")
    assert not (cache / "models").exists() or not list((cache / "models").iterdir())  # nothing half-converted


WIDTH_LINE = ("backbone_width=0.5 with backbone_weights='torchvision': torchvision publishes the width-1.0 networks "
              "only; expected backbone_width=1.0")


def backbone_line(name):
    return (f"backbone_weights='torchvision' with backbone={name!r}: torchvision's ImageNet weights are converted for "
            "['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'resnext50_32x4d', 'resnext101_32x8d'] "
            "only; choose one of them, or other backbone_weights")


def test_width_and_backbone_are_refused_with_one_line():
    with pytest.raises(ConfigError) as error:
        build_model(ModelSettings(backbone_width=0.5, backbone_weights="torchvision"), num_classes=3)
    assert str(error.value) == WIDTH_LINE
    with pytest.raises(ConfigError) as error:
        load_config(["backbone_weights='torchvision'", "backbone_width=0.5"])
    assert str(error.value) == WIDTH_LINE
    for name in ("resnext18", "preact_resnet50", "mobilenetv2"):
        with pytest.raises(ConfigError) as error:
            build_model(ModelSettings(backbone=name, backbone_width=1.0, backbone_weights="torchvision"), 3)
        assert str(error.value) == backbone_line(name)
        with pytest.raises(ConfigError) as error:
            load_config([f"backbone={name!r}", "backbone_weights='torchvision'", "backbone_width=1.0"])
        assert str(error.value) == backbone_line(name)
    assert load_config(["backbone='resnet50'", "backbone_weights='torchvision'", "backbone_width=1.0"])


def test_torch_missing_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails as on a machine without it
    monkeypatch.setitem(sys.modules, "torch.hub", None)
    with pytest.raises(ValueError) as error:
        DOWNLOAD("resnet50")
    message = str(error.value)
    assert "\n" not in message
    assert message == ("backbone_weights='torchvision': torch is needed only for the one-time conversion of "
                       "torchvision's resnet50 weights: pip install torch; or copy the converted file to "
                       f"{tw.converted_file('resnet50')} from a machine where it was made")


def test_offline_is_one_line(monkeypatch, tmp_path):
    asked = {}

    def offline(url, **options):
        asked.update(url=url, **options)
        raise urllib.error.URLError("no network")

    hub = types.SimpleNamespace(load_state_dict_from_url=offline, get_dir=lambda: str(tmp_path / "hub"))
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(hub=hub))  # torch's hub, without torch
    monkeypatch.setitem(sys.modules, "torch.hub", hub)
    with pytest.raises(ValueError) as error:
        DOWNLOAD("resnet50")
    assert asked["url"] == "https://download.pytorch.org/models/resnet50-11ad3fa6.pth" and asked["check_hash"]
    assert str(error.value) == (
        "backbone_weights='torchvision': cannot download https://download.pytorch.org/models/resnet50-11ad3fa6.pth "
        f"(URLError: <urlopen error no network>); put resnet50-11ad3fa6.pth in {tmp_path / 'hub' / 'checkpoints'}, "
        f"or the converted file at {tmp_path / 'models' / 'torchvision_resnet50_IMAGENET1K_V2.weights.h5'}")


def test_registry_is_the_config_rules_list_and_our_backbones():
    assert list(tw.TORCHVISION_WEIGHTS) == list(TORCHVISION_BACKBONES)
    assert set(TORCHVISION_BACKBONES) <= set(typing.get_args(configs.ResNet)) & set(BACKBONES)
    for name, weights in tw.TORCHVISION_WEIGHTS.items():
        assert weights.url.startswith("https://download.pytorch.org/models/") and weights.url.endswith(".pth")
        assert re.fullmatch(r"\w+_Weights\.IMAGENET1K_V[12]", weights.entry), name


def test_cache_folder_is_keras_one(monkeypatch, tmp_path):
    assert tw.keras_cache_folder() == str(tmp_path)  # $KERAS_HOME, as keras.utils.get_file
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    assert tw.keras_cache_folder() == str(tmp_path / "home" / ".keras")


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "preact_resnet18"])
@pytest.mark.parametrize("size", [63, 64, 65])
def test_padding_is_symmetric_with_the_shapes_of_same(name, size):
    inputs = keras.Input((size, size, 3))
    model = keras.Model(inputs, BACKBONES[name][0](inputs, width=0.125))
    pads = [layer for layer in model.layers if isinstance(layer, keras.layers.ZeroPadding2D)]
    assert len(pads) == (4 if name.startswith("preact") else 5)  # stem conv, (stem pool,) first block of stages 2-4
    for pad in pads:
        strided = model.get_layer(pad.name[:-len("_pad")])
        assert strided.strides == (2, 2) and strided.padding == "valid"
        size_of = strided.kernel_size if isinstance(strided, keras.layers.Conv2D) else strided.pool_size
        assert pad.padding == ((size_of[0] // 2,) * 2, (size_of[1] // 2,) * 2)  # as much before as after
        if isinstance(strided, keras.layers.Conv2D):
            same = keras.layers.Conv2D(strided.filters, size_of, strides=2, padding="same")
        else:
            same = keras.layers.MaxPooling2D(size_of, strides=2, padding="same")
        assert strided.output.shape == same.compute_output_shape(pad.input.shape)
    pool = model.get_layer(f"{name}_stem_pool")  # pre-activation: no ReLU before it, so "same" (-inf padding)
    assert pool.padding == ("same" if name.startswith("preact") else "valid")
    side = size
    for _ in range(5):
        side = math.ceil(side / 2)
    assert model.output.shape[1:3] == (side, side)


def expected_order(name, blocks, bottleneck):
    """Our weighted layers in the order Keras saves them, fixed before the padding layers came."""
    names = [f"{name}_stem_conv", f"{name}_stem_bn"]
    for stage, count in enumerate(blocks, 1):
        for block in range(1, count + 1):
            prefix = f"{name}_s{stage}_b{block}_"
            convs = 3 if bottleneck else 2
            body = [f"{prefix}{kind}{k}" for k in range(1, convs + 1) for kind in ("conv", "bn")]
            if block == 1 and (stage > 1 or bottleneck):  # down_conv after the last conv, down_bn after its bn
                body = body[:-1] + [f"{prefix}down_conv", body[-1], f"{prefix}down_bn"]
            names += body
    return names


def test_weighted_layers_keep_their_order():
    # A .weights.h5 file names a layer by its class and rank (conv2d_7), not its name: files saved
    # before the padding layers came load only while the weighted layers keep this order.
    for name, blocks, bottleneck in [("resnet18", [2, 2, 2, 2], False), ("resnet50", [3, 4, 6, 3], True)]:
        model = build_model(ModelSettings(backbone=name, backbone_width=0.125), num_classes=3)
        assert [layer.name for layer in model.layers if layer.weights] == [*expected_order(name, blocks, bottleneck),
                                                                           "logits"]


# --- with torch and torchvision ---------------------------------------------------------------


def import_torchvision(monkeypatch):
    """(torch, torchvision), or the test is skipped: neither is a requirement of the project."""
    torch = optional_import("torch", why="not a requirement: the torchvision comparison needs it")
    # triton (torch's GPU compiler, in the CUDA wheels) crashes the process when it loads after
    # TensorFlow (each brings its own LLVM); torchvision's CPU models do not need it.
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "triton", None)
        torchvision = optional_import("torchvision", why="not a requirement: the torchvision comparison needs it")
    return torch, torchvision


def random_torchvision(name, seed, monkeypatch):
    """torchvision's network with random weights and non-trivial BatchNorm statistics, in eval mode."""
    torch, torchvision = import_torchvision(monkeypatch)
    torch.manual_seed(seed)
    network = getattr(torchvision.models, name)(weights=None).eval()
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                channels = module.num_features
                module.weight.copy_(torch.rand(channels) + 0.5)
                module.bias.copy_(torch.randn(channels) * 0.2)
                module.running_mean.copy_(torch.randn(channels) * 0.2)
                module.running_var.copy_(torch.rand(channels) + 0.5)
    return torch, network


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d"])
def test_same_features_as_torchvision(name, monkeypatch):
    torch, network = random_torchvision(name, 0, monkeypatch)
    monkeypatch.setattr(tw, "download_state_dict", lambda requested: network.state_dict())
    model = torchvision_model(name)
    features = keras.Model(model.input, backbone_layers(model, name)[-1].output)  # the backbone's last feature map
    trunk = torch.nn.Sequential(*list(network.children())[:-2])  # without average pooling and fc
    for size in (64, 65):  # an even size is where "same" would have shifted every feature
        images = np.random.default_rng(size).uniform(0, 255, (2, size, size, 3)).astype("float32")
        normalised = torch.from_numpy(((images / 255 - MEAN) / STD).astype("float32")).permute(0, 3, 1, 2)
        with torch.no_grad():
            expected = trunk(normalised).permute(0, 2, 3, 1).numpy()  # NCHW -> NHWC
        ours = np.asarray(features(images))
        assert ours.shape == expected.shape
        difference = np.abs(ours - expected).max() / np.abs(expected).max()
        print(f"{name} at {size} px: max |ours - torchvision| / max |torchvision| = {difference:.2e}")
        assert difference < 1e-4
    # the second load reads the converted file: no state dict, no torch
    monkeypatch.setattr(tw, "download_state_dict", lambda requested: pytest.fail("converted again"))
    again = torchvision_model(name, seed=1)
    again_features = keras.Model(again.input, backbone_layers(again, name)[-1].output)
    np.testing.assert_array_equal(again_features(images), ours)


def test_registry_entries_are_torchvisions_default_weights(monkeypatch):
    models = import_torchvision(monkeypatch)[1].models
    for name, weights in tw.TORCHVISION_WEIGHTS.items():
        enum, tag = weights.entry.split(".")
        entry = getattr(getattr(models, enum), tag)
        assert getattr(models, enum).DEFAULT == entry and entry.url == weights.url, name
        assert models.get_model_weights(name) is getattr(models, enum)
