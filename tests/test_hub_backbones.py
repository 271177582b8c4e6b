"""keras-hub backbones (`backbone="hub:<preset>"`), offline: tiny random-weight presets made here.

Each family keras-hub offers for images is built from its architecture arguments at a tiny size,
saved as a preset folder (as `save_to_preset` writes it, the layout of a downloaded preset), and
used through `hub:<folder>` exactly as a downloaded preset is: it builds, trains a step, round-trips
through `.keras` and exports to a SavedModel with the same outputs.
"""

import json
import shutil

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from conftest import run_in_process

from backbone import hub
from multi_label.export.formats import serving_archive
from multi_label.model import ModelSettings, build_model
from multi_label.tasks.preset_input import with_preset_input
from utils.config import Config, ConfigError

SIZE = 32
PATCH = 4
VIT = dict(patch_size=PATCH, hidden_dim=16, num_layers=2, num_heads=2, intermediate_dim=32,
           image_shape=(SIZE, SIZE, 3))
# ImageNet mean/std as a converter holds them: x * scale + offset on [0, 255] pixels
SCALE = [1 / (255 * s) for s in (0.229, 0.224, 0.225)]
OFFSET = [-m / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]


def _efficientnet():
    return keras_hub.models.EfficientNetBackbone(
        stackwise_kernel_sizes=[3, 3], stackwise_num_repeats=[1, 1], stackwise_input_filters=[8, 8],
        stackwise_output_filters=[8, 16], stackwise_expansion_ratios=[1, 4],
        stackwise_squeeze_and_excite_ratios=[0.25, 0.25], stackwise_strides=[1, 2],
        stackwise_block_types=["v1", "v1"], stackwise_force_input_filters=[0, 0],
        stackwise_nores_option=[False, False], stackwise_width_coefficients=[1.0, 1.0],
        stackwise_depth_coefficients=[1.0, 1.0])  # num_features stays 1280: keras-hub 0.32 does not save it


def _clip():
    # A CLIP preset is the joint model; the backbone takes its image half.
    text = keras_hub.models.CLIPTextEncoder(vocabulary_size=32, embedding_dim=16, hidden_dim=16, num_layers=1,
                                            num_heads=2, intermediate_dim=32, max_sequence_length=8)
    vision = keras_hub.models.CLIPVisionEncoder(**VIT)
    return keras_hub.models.CLIPBackbone(vision, text, projection_dim=8)


FAMILIES = {
    "resnet": lambda: keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 32],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block"),
    "efficientnet": _efficientnet,
    "dinov2": lambda: keras_hub.models.DINOV2Backbone(**{**VIT, "image_shape": (SIZE, SIZE, 3)},
                                                      num_register_tokens=2, position_embedding_shape=(SIZE, SIZE, 3)),
    "clip": _clip,
    "siglip": lambda: keras_hub.models.SigLIPVisionEncoder(**VIT),
    "vit": lambda: keras_hub.models.ViTBackbone(image_shape=(SIZE, SIZE, 3), patch_size=PATCH, num_layers=2,
                                                num_heads=2, hidden_dim=16, mlp_dim=32),
}
TOKEN_FAMILIES = ["dinov2", "clip", "siglip", "vit"]


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    """family -> folder of a tiny random-weight preset with an ImageNet-normalising converter."""
    root = tmp_path_factory.mktemp("presets")
    folders = {}
    for name, make in FAMILIES.items():
        folder = str(root / name)
        keras.utils.set_random_seed(1)
        make().save_to_preset(folder)
        keras_hub.layers.ImageConverter(image_size=(SIZE, SIZE), scale=SCALE, offset=OFFSET).save_to_preset(folder)
        folders[name] = folder
    return folders


def _settings(preset, **overrides):
    return ModelSettings(**{"backbone": f"hub:{preset}", "backbone_width": 1.0, "image_size": SIZE,
                            "head": "linear", "pooling": "avg", "backbone_weights": "preset", **overrides})


def _images(count=4, seed=0):
    return np.random.RandomState(seed).uniform(0, 255, (count, SIZE, SIZE, 3)).astype("float32")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_trains_a_step_round_trips_and_exports(family, presets, tmp_path):
    pooling = "class_token" if family in TOKEN_FAMILIES else "max"
    model = build_model(_settings(presets[family], pooling=pooling), 5)
    assert model.name == "hub_linear" and model.get_layer("hub").encoder is not None
    x, y = _images(), (np.random.RandomState(1).rand(4, 5) > 0.5).astype("float32")
    before = [np.array(w) for w in model.trainable_weights]
    model.compile(keras.optimizers.SGD(0.1), keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, verbose=0)
    moved = [not np.array_equal(b, np.array(w)) for b, w in zip(before, model.trainable_weights)]
    assert sum(moved) > len(moved) // 2  # the encoder trains, not only the head
    logits = model.predict(x, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", compile=False, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), logits, atol=1e-5)
    archive = serving_archive(model, [f"c{i}" for i in range(5)], np.full(5, 0.5), SIZE)
    archive.write_out(str(tmp_path / "savedmodel"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "savedmodel")).signatures["serving_default"]
    pixels = x.round().astype("uint8")
    probabilities = served(images=tf.constant(pixels))["probabilities"].numpy()
    expected = 1 / (1 + np.exp(-model.predict(pixels.astype("float32"), verbose=0)))
    assert np.abs(probabilities - expected).max() < 1e-4


def test_weights_load_from_the_preset_only_when_asked(presets):
    saved = keras_hub.models.Backbone.from_preset(presets["dinov2"]).weights
    pretrained = build_model(_settings(presets["dinov2"]), 3).get_layer("hub").encoder
    keras.utils.set_random_seed(7)
    fresh = build_model(_settings(presets["dinov2"], backbone_weights="none"), 3).get_layer("hub").encoder
    by_path = {w.path: np.array(w) for w in saved}
    assert all(np.array_equal(by_path[w.path], np.array(w)) for w in pretrained.weights)
    kernels = [w for w in fresh.weights if w.path.endswith("kernel")]
    assert not np.array_equal(by_path[kernels[0].path], np.array(kernels[0]))


def test_the_run_precision_applies_to_the_encoder(presets):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model(_settings(presets["vit"], pooling="class_token"), 3)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("hub").encoder.compute_dtype == "bfloat16"
    assert model.output.dtype == "float32" and np.isfinite(model.predict(_images(2), verbose=0)).all()


def test_the_converter_normalisation_is_inside_the_model(presets):
    model = build_model(_settings(presets["resnet"]), 3)
    layer = model.get_layer("hub_normalization")
    pixels = _images(1)
    expected = (pixels / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(np.array(layer(pixels)), expected, atol=1e-5)


def test_patch_tokens_become_the_grid_and_the_class_token_is_first(presets):
    encoder = keras_hub.models.Backbone.from_preset(presets["dinov2"])
    x = _images(2)
    normalised = x * np.array(SCALE) + np.array(OFFSET)
    tokens = np.array(encoder({"images": normalised.astype("float32")}))
    grid, token = hub.HubEncoder(encoder, class_token=True)(normalised.astype("float32"))
    side = SIZE // PATCH
    assert grid.shape == (2, side, side, 16)
    np.testing.assert_allclose(np.array(token), tokens[:, 0], atol=1e-6)
    # after the class token and the 2 register tokens, patch (row r, column c) is token 3 + r * side + c
    np.testing.assert_allclose(np.array(grid)[:, 1, 2], tokens[:, 3 + 1 * side + 2], atol=1e-6)


@pytest.mark.parametrize("head", ["csra", "ml_gcn", "query2label"])
def test_spatial_heads_read_a_vit_grid(head, presets):
    labels = (np.random.RandomState(0).rand(20, 4) > 0.5).astype("float32")
    model = build_model(_settings(presets["siglip"], head=head, decoder_width=16, decoder_heads=2,
                                  decoder_feedforward=32, graph_hidden=8), 4, train_labels=labels)
    assert model.predict(_images(2), verbose=0).shape == (2, 4)


def test_preset_input_size_and_lines(presets, capsys):
    config = Config(backbone=f"hub:{presets['clip']}", image_size=64, backbone_weights="preset", backbone_width=1.0)
    assert with_preset_input(config).image_size == SIZE  # CLIP's position embeddings fix it
    assert "image_size=64 -> 32" in capsys.readouterr().out
    dinov2 = Config(backbone=f"hub:{presets['dinov2']}", image_size=30, backbone_width=1.0)
    assert with_preset_input(dinov2).image_size == 28  # any multiple of the patch size
    with pytest.raises(ConfigError, match="gives no class token"):
        with_preset_input(Config(backbone=f"hub:{presets['resnet']}", pooling="class_token"))


def test_a_preset_not_in_the_cache_stops_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KAGGLE_API_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: offline at once
    with pytest.raises(ConfigError) as error:
        with_preset_input(Config(backbone="hub:dinov2_small", image_size=224))
    line = str(error.value)
    assert "\n" not in line and "hub:dinov2_small" in line and str(tmp_path / "cache") in line
    assert "backbone='hub:<that folder>'" in line
    missing = tmp_path / "no_preset"
    missing.mkdir()
    with pytest.raises(ConfigError, match="cannot read the preset from .*no_preset"):
        with_preset_input(Config(backbone=f"hub:{missing}"))


def test_settings_that_do_not_apply_say_so(presets, capsys):
    build_model(_settings(presets["resnet"], backbone_width=0.5), 3)
    assert "backbone_width=0.5 does not apply" in capsys.readouterr().out
    from utils.config import load_config

    for args, words in [
        (["backbone=hub:x", "normalization=imagenet"], "brings its own input normalisation"),
        (["backbone_weights=preset"], "'preset' loads the weights of a keras-hub preset"),
        (["backbone=hub:x", "backbone_weights=imagenet"], "'preset' loads the weights"),
        (["pooling=class_token"], "only keras-hub ViT presets"),
        (["backbone=hub:"], "hub:<keras-hub preset name or folder>"),
    ]:
        with pytest.raises(ConfigError, match=words):
            load_config(args)


def test_train_test_and_convert_on_a_preset_folder(presets, tmp_path):
    """The whole product on a DINOv2 preset: train (its class token read by the linear head), test, convert.

    run.py in process: the command line itself is tested elsewhere (test_bad_inputs, test_end_to_end).
    """
    preset = tmp_path / "preset"
    shutil.copytree(presets["dinov2"], preset)
    backbone = [f"backbone='hub:{preset}'", "backbone_weights='preset'", "backbone_width=1.0",
                "pooling='class_token'", "image_size=34", "run_name=hub", "demo_images=80", "batch_size=16",
                "shuffle_buffer=32", "precision='float32'", "epochs=1"]
    status, trained = run_in_process(tmp_path, *backbone)
    assert status == 0, trained[-2000:]
    assert "image_size=34 -> 32" in trained and "Test mAP: " in trained
    saved = json.loads((tmp_path / "models" / "hub" / "config.json").read_text())
    assert saved["image_size"] == 32 and saved["backbone"] == f"hub:{preset}"
    shutil.rmtree(preset)  # the trained model holds the encoder: the other modes need no preset files
    status, tested = run_in_process(tmp_path, "mode=test", *backbone)
    assert status == 0, tested[-2000:]
    metrics = json.loads((tmp_path / "models" / "hub" / "metrics.json").read_text())
    assert f"Test mAP: {metrics['mAP']:.4f}" in tested
    status, converted = run_in_process(tmp_path, "mode=convert", "formats=('savedmodel',)", *backbone)
    assert status == 0, converted[-2000:]
    parity = json.loads((tmp_path / "models" / "hub" / "export" / "parity.json").read_text())
    assert parity["formats"]["savedmodel (uint8)"]["meets_bar"], parity
