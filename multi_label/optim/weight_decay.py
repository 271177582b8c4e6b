"""L2 weight decay per kind of weight, set on a built model of any architecture.

Two decays exist in this project and they are not the same thing:

- L2 in the loss (this file): `loss += s * sum(w^2)` for each regularized
  weight, the Keras `L2` convention. Its gradient is `2 * s * w`, so it
  equals the "weight decay" `lambda` of SGD in PyTorch/Caffe (which adds
  `lambda * w` to the gradient) when `s = lambda / 2`: the classic ResNet
  `1e-4` is `conv=5e-5` here. The penalty goes through the optimizer, so with
  Adam-like optimizers it is rescaled per weight by the adaptive step.
- Decoupled weight decay (the `weight_decay` setting, `build_optimizer`):
  `w -= lr * weight_decay * w` outside the gradient (Loshchilov & Hutter,
  2019, "Decoupled Weight Decay Regularization"), on every trainable weight.

The L1 of network slimming on the prunable BatchNorm gammas (`slimming_l1`,
multi_label/slimming/sparsity.py) is set when the model is built; an L2 set
here on those gammas joins it, one L1L2 regularizer doing both.
"""

import keras

from multi_label.keras_internals import all_layers
from multi_label.slimming.sparsity import composed_regularizer, strengths

# Attributes holding a conv or dense kernel, and the layer attribute Keras
# serializes for its regularizer.
KERNEL_ATTRIBUTES = {
    "kernel": "kernel_regularizer",
    "depthwise_kernel": "depthwise_regularizer",
    "pointwise_kernel": "pointwise_regularizer",
}


def _set_l2(layer, weight_name, regularizer_name, strength):
    """Sets (or clears, for 0) the L2 of one weight, keeping an L1 already there; returns 1 if L2 was set."""
    variable = getattr(layer, weight_name, None)
    # Some layers expose a property of that name that is a computed tensor
    # (e.g. a LoRA-merged kernel); only real variables carry a regularizer.
    if not isinstance(variable, keras.Variable):
        return 0
    # The L1 of network slimming (`slimming_l1`, set when the model is built) stays beside the L2.
    l1, _ = strengths(variable.regularizer)
    regularizer = composed_regularizer(l1, strength)
    variable.regularizer = regularizer
    # The layer attribute is what get_config() serializes, so a saved config
    # shows the decay.
    if hasattr(layer, regularizer_name):
        setattr(layer, regularizer_name, regularizer)
    return int(strength > 0.0)


def apply_weight_decay(
    model,
    conv: float,
    bn_gamma: float,
    bias: float = 0.0,
    bn_beta: float = 0.0,
    verbose: bool = True,
) -> dict:
    """Sets L2 penalties on the weights of a built model, by kind of weight.

    Walks every layer, nested models included, and sets `variable.regularizer`
    (which `Layer.losses` reads, so `fit` adds the penalties to the loss) and
    the matching layer attribute (so `get_config` shows it):

    - `conv` on every kernel: Conv1D/2D/3D and their transposes, Dense,
      EinsumDense, and the depthwise and pointwise kernels of Depthwise and
      Separable convolutions;
    - `bias` on the `bias` of every layer (those layers and any other);
    - `bn_gamma` and `bn_beta` on the scale and offset of BatchNormalization.

    LayerNormalization and GroupNormalization are left alone: their scale is
    not followed by a re-normalization that makes it scale-invariant, and
    the recipes that use them (ViT, ConvNeXt) exclude norm parameters from
    decay. Embeddings and any other weight are also left alone.

    A strength of 0 removes the regularizer of that kind, so the call decides
    the L2 of every weight it covers. Keras only adds penalties of trainable
    weights to the loss: a frozen backbone contributes nothing until it is
    unfrozen, and then it does without another call.

    Args:
        model: `keras.Model`. A built model.
        conv: float. L2 strength of conv and dense kernels.
        bn_gamma: float. L2 strength of BatchNormalization gammas.
        bias: float. L2 strength of biases.
        bn_beta: float. L2 strength of BatchNormalization betas.
        verbose: bool. Print the summary line.

    Returns:
        dict. Number of weights given a penalty, under "kernels", "biases",
        "bn_gammas" and "bn_betas", and the one-line "summary".
    """
    if not model.built:
        raise ValueError(
            "apply_weight_decay needs a built model, so that its weights "
            f"exist. Received an unbuilt model: {model.name!r}"
        )
    strengths = {"conv": conv, "bn_gamma": bn_gamma, "bias": bias, "bn_beta": bn_beta}
    for name, value in strengths.items():
        if value < 0.0:
            raise ValueError(f"{name} must be >= 0. Received: {name}={value!r}")
    counts = _regularize(model, **strengths)
    counts["summary"] = _summary(counts, strengths)
    if verbose:
        print(f"L2 weight decay: {counts['summary']}")
    return counts


def _regularize(model, conv, bn_gamma, bias, bn_beta):
    """Sets the L2 of every covered weight; returns the counts of weights given a penalty."""
    counts = {"kernels": 0, "biases": 0, "bn_gammas": 0, "bn_betas": 0}
    # The walk Keras uses to collect `model.losses`: nested layers included, each once.
    for layer in all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            counts["bn_gammas"] += _set_l2(
                layer, "gamma", "gamma_regularizer", bn_gamma
            )
            counts["bn_betas"] += _set_l2(
                layer, "beta", "beta_regularizer", bn_beta
            )
            continue
        for weight_name, regularizer_name in KERNEL_ATTRIBUTES.items():
            counts["kernels"] += _set_l2(
                layer, weight_name, regularizer_name, conv
            )
        counts["biases"] += _set_l2(layer, "bias", "bias_regularizer", bias)
    return counts


def _summary(counts, strengths):
    """The one-line summary, e.g. "53 conv/dense kernels at 5e-05, 0 BN gammas, ..."."""
    return ", ".join(
        f"{counts[key]} {label}" + (f" at {strengths[strength]:g}" if counts[key] else "")
        for key, label, strength in (
            ("kernels", "conv/dense kernels", "conv"),
            ("bn_gammas", "BN gammas", "bn_gamma"),
            ("biases", "biases", "bias"),
            ("bn_betas", "BN betas", "bn_beta"),
        )
    )
