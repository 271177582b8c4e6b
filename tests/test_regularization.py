"""Tests for multi_label.optim.weight_decay.apply_weight_decay."""

import keras
import numpy as np
import pytest

from multi_label.optim.weight_decay import apply_weight_decay

CONV = 1e-4
GAMMA = 5e-4


def conv_bn(x, filters, strides=1):
    x = keras.layers.Conv2D(filters, 3, strides, padding="same", use_bias=False)(x)
    return keras.layers.BatchNormalization()(x)


def residual_stage():
    """A nested model: two conv-BN pairs plus a projection shortcut."""
    inputs = keras.Input((16, 16, 8))
    x = keras.layers.ReLU()(conv_bn(inputs, 16, strides=2))
    x = conv_bn(x, 16)
    shortcut = keras.layers.Conv2D(16, 1, 2, use_bias=False)(inputs)
    shortcut = keras.layers.BatchNormalization()(shortcut)
    outputs = keras.layers.ReLU()(keras.layers.Add()([x, shortcut]))
    return keras.Model(inputs, outputs, name="stage")


def resnet_like(num_classes=5):
    """Stem conv-BN, one nested residual stage, pooled dense head."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.ReLU()(conv_bn(inputs, 8, strides=2))
    x = residual_stage()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs)


def layers_of(model, kind):
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, kind)
    ]


def test_resnet_like_counts_and_targets():
    model = resnet_like()
    counts = apply_weight_decay(model, conv=CONV, bn_gamma=GAMMA, verbose=False)
    # Stem + 2 stage convs + projection = 4 conv kernels, + 1 dense kernel.
    assert counts["kernels"] == 5
    assert counts["bn_gammas"] == 4
    assert counts["biases"] == 0
    assert counts["bn_betas"] == 0
    assert counts["summary"] == (
        "5 conv/dense kernels at 0.0001, 4 BN gammas at 0.0005, "
        "0 biases, 0 BN betas"
    )
    expected = {}
    for layer in layers_of(model, (keras.layers.Conv2D, keras.layers.Dense)):
        expected[id(layer.kernel)] = CONV
    for layer in layers_of(model, keras.layers.BatchNormalization):
        expected[id(layer.gamma)] = GAMMA
    for variable in model.weights:
        if id(variable) in expected:
            assert isinstance(variable.regularizer, keras.regularizers.L2)
            assert variable.regularizer.l2 == pytest.approx(expected[id(variable)])
        else:
            # Dense bias, BN beta, BN moving statistics: no penalty.
            assert variable.regularizer is None, variable.path


def test_model_losses_are_l2_sums():
    model = resnet_like()
    apply_weight_decay(model, conv=CONV, bn_gamma=GAMMA, verbose=False)
    # Non-trivial gammas, so the gamma term is not just a count.
    for layer in layers_of(model, keras.layers.BatchNormalization):
        layer.gamma.assign(np.linspace(0.5, 1.5, layer.gamma.shape[0]))
    expected = 0.0
    for layer in layers_of(model, (keras.layers.Conv2D, keras.layers.Dense)):
        expected += CONV * np.sum(keras.ops.convert_to_numpy(layer.kernel) ** 2)
    for layer in layers_of(model, keras.layers.BatchNormalization):
        expected += GAMMA * np.sum(keras.ops.convert_to_numpy(layer.gamma) ** 2)
    assert len(model.losses) == 9
    total = sum(float(loss) for loss in model.losses)
    assert total == pytest.approx(expected, rel=1e-5)


def test_fit_loss_includes_penalty():
    model = resnet_like()
    apply_weight_decay(model, conv=0.1, bn_gamma=0.1, verbose=False)
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    model.compile("sgd", loss)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 32, 32, 3)).astype("float32")
    y = (rng.random(size=(4, 5)) > 0.5).astype("float32")
    data_loss = float(loss(y, model(x)))
    penalty = sum(float(value) for value in model.losses)
    assert penalty > 0.1
    total = model.evaluate(x, y, batch_size=4, verbose=0)
    assert total == pytest.approx(data_loss + penalty, rel=1e-4)


def test_biases_betas_and_separable_kernels():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.SeparableConv2D(4, 3)(inputs)
    x = keras.layers.DepthwiseConv2D(3)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.LayerNormalization()(x)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    counts = apply_weight_decay(
        model, conv=1e-4, bn_gamma=1e-4, bias=1e-5, bn_beta=1e-5, verbose=False
    )
    # Separable: depthwise + pointwise; depthwise conv; dense.
    assert counts["kernels"] == 4
    assert counts["biases"] == 3
    assert counts["bn_gammas"] == 1 and counts["bn_betas"] == 1
    layer_norm = layers_of(model, keras.layers.LayerNormalization)[0]
    assert layer_norm.gamma.regularizer is None


def test_config_shows_regularizer_and_zero_clears_it():
    model = resnet_like()
    apply_weight_decay(model, conv=CONV, bn_gamma=GAMMA, verbose=False)
    dense = layers_of(model, keras.layers.Dense)[0]
    config = dense.get_config()["kernel_regularizer"]
    assert config["class_name"] == "L2"
    assert config["config"]["l2"] == pytest.approx(CONV)
    batch_norm = layers_of(model, keras.layers.BatchNormalization)[0]
    assert batch_norm.get_config()["gamma_regularizer"]["config"]["l2"] == (
        pytest.approx(GAMMA)
    )
    counts = apply_weight_decay(model, conv=0.0, bn_gamma=0.0, verbose=False)
    assert counts["kernels"] == 0 and counts["bn_gammas"] == 0
    assert model.losses == []
    assert dense.get_config()["kernel_regularizer"] is None


def test_rejects_negative_strength_and_unbuilt_model():
    with pytest.raises(ValueError, match="conv must be >= 0"):
        apply_weight_decay(resnet_like(), conv=-1.0, bn_gamma=0.0)
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="built model"):
        apply_weight_decay(unbuilt, conv=1e-4, bn_gamma=0.0)


def test_foundation_resnet18_every_conv_and_gamma_nothing_else():
    from multi_label.model import ModelSettings, build_model

    model = build_model(ModelSettings(backbone="resnet18", backbone_width=0.125, head="linear"), 10)
    counts = apply_weight_decay(model, conv=CONV, bn_gamma=GAMMA, verbose=False)
    convs = layers_of(model, keras.layers.Conv2D)
    dense = layers_of(model, keras.layers.Dense)
    batch_norms = layers_of(model, keras.layers.BatchNormalization)
    # Stem + 8 basic blocks of two convs + 3 projection shortcuts; one dense head.
    assert (len(convs), len(dense), len(batch_norms)) == (20, 1, 20)
    assert counts["kernels"] == 21 and counts["bn_gammas"] == 20
    assert counts["biases"] == 0 and counts["bn_betas"] == 0
    expected = {id(layer.kernel): CONV for layer in convs + dense}
    expected.update({id(layer.gamma): GAMMA for layer in batch_norms})
    penalized = []
    for variable in model.weights:
        if id(variable) in expected:
            assert isinstance(variable.regularizer, keras.regularizers.L2), variable.path
            assert variable.regularizer.l2 == pytest.approx(expected[id(variable)])
            penalized.append(variable)
        else:
            # Biases, BN betas and moving statistics, the normalization layer: none.
            assert getattr(variable, "regularizer", None) is None, variable.path
    assert len(penalized) == 41
    assert len(model.losses) == 41
