"""ImageNet weights for the hand-written ResNets and ResNeXts, converted once from torchvision's.

`backbone_weights="torchvision"` downloads torchvision's published ImageNet state dict of the
network (the best one torchvision publishes, its `DEFAULT`), converts it to this project's layer
names and Keras's tensor layout, and saves the backbone's weights as
`<Keras cache>/models/torchvision_<name>_<weights tag>.weights.h5`. Later runs load that file, and
need no torch; the file can be copied to another machine's Keras cache. The layout of
backbone/resnet.py is torchvision's ResNet v1.5 (stride on the 3x3 of a bottleneck, a 1x1
projection shortcut with its BatchNorm, BatchNorm epsilon 1e-5, symmetric padding), so every
tensor has a place and the features are torchvision's (tests/test_torchvision_weights.py).

Input normalisation: torchvision's ImageNet weights were trained on [0, 1] images normalised with
mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225) per channel (its `ImageClassification`
transform). That is this project's "imagenet" normalisation ((x / 255 - mean) / std on [0, 255]
pixels), the default of these backbones: normalization="backbone" gives it.
"""

import os
import re
from typing import NamedTuple

import keras
import numpy as np

from backbone import BACKBONES
from backbone.torch_checkpoint import set_converted_weights
from utils.atomic import atomic_path


class TorchvisionWeights(NamedTuple):
    """One published torchvision weights file: its enum entry and URL (copied from torchvision/models/resnet.py)."""

    entry: str  # the torchvision weights enum entry, e.g. "ResNet50_Weights.IMAGENET1K_V2"
    url: str  # its file name carries the first digits of its SHA-256, which torch.hub checks

    @property
    def tag(self):
        """The weights tag, e.g. "IMAGENET1K_V2", in the converted file's name."""
        return self.entry.rsplit(".", 1)[1]


# Registry name -> torchvision's DEFAULT (best published) ImageNet weights of that network
# (torchvision 0.29; ImageNet top-1 at 224 px in the comment).
TORCHVISION_WEIGHTS = {
    "resnet18": TorchvisionWeights("ResNet18_Weights.IMAGENET1K_V1",  # 69.8 %
                                   "https://download.pytorch.org/models/resnet18-f37072fd.pth"),
    "resnet34": TorchvisionWeights("ResNet34_Weights.IMAGENET1K_V1",  # 73.3 %
                                   "https://download.pytorch.org/models/resnet34-b627a593.pth"),
    "resnet50": TorchvisionWeights("ResNet50_Weights.IMAGENET1K_V2",  # 80.9 %
                                   "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"),
    "resnet101": TorchvisionWeights("ResNet101_Weights.IMAGENET1K_V2",  # 81.9 %
                                    "https://download.pytorch.org/models/resnet101-cd907fc2.pth"),
    "resnet152": TorchvisionWeights("ResNet152_Weights.IMAGENET1K_V2",  # 82.3 %
                                    "https://download.pytorch.org/models/resnet152-f82ba261.pth"),
    "resnext50_32x4d": TorchvisionWeights("ResNeXt50_32X4D_Weights.IMAGENET1K_V2",  # 81.2 %
                                          "https://download.pytorch.org/models/resnext50_32x4d-1a0047aa.pth"),
    "resnext101_32x8d": TorchvisionWeights("ResNeXt101_32X8D_Weights.IMAGENET1K_V2",  # 82.8 %
                                           "https://download.pytorch.org/models/resnext101_32x8d-110c445d.pth"),
}

WEIGHTS = "backbone_weights='torchvision'"
# torchvision's BatchNorm tensors in the order of Keras's variables: gamma, beta, moving_mean, moving_variance
BN_TENSORS = ("weight", "bias", "running_mean", "running_var")
BLOCK_MODULE = re.compile(r"layer(\d+)\.(\d+)\.(conv\d+|bn\d+|downsample\.0|downsample\.1)")
STEM_PART = {"conv1": "stem_conv", "bn1": "stem_bn"}  # torchvision's module -> our layer name after "<name>_"
SHORTCUT_PART = {"downsample.0": "down_conv", "downsample.1": "down_bn"}


def keras_cache_folder():
    """Keras's cache folder, found as `keras.utils.get_file` finds it: $KERAS_HOME, else ~/.keras.

    Keras falls back to /tmp/.keras when the home folder is not writable; so does this.
    """
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    home = os.path.expanduser("~")
    return os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")


def converted_file(name):
    """The path of the converted weights of `name`: <Keras cache>/models/torchvision_<name>_<tag>.weights.h5."""
    file_name = f"torchvision_{name}_{TORCHVISION_WEIGHTS[name].tag}.weights.h5"
    return os.path.join(keras_cache_folder(), "models", file_name)


def check_supported(name, width):
    """ValueError with one line unless torchvision publishes ImageNet weights of backbone `name` at `width`."""
    if name not in TORCHVISION_WEIGHTS:
        raise ValueError(f"{WEIGHTS} with backbone={name!r}: torchvision's ImageNet weights are converted for "
                         f"{list(TORCHVISION_WEIGHTS)} only; choose one of them, or other backbone_weights")
    if width != 1.0:
        raise ValueError(f"backbone_width={width} with {WEIGHTS}: torchvision publishes the width-1.0 networks only; "
                         "expected backbone_width=1.0")


def download_state_dict(name):
    """torchvision's ImageNet state dict of `name`, downloaded once into torch's hub cache (its hash checked)."""
    try:
        import torch.hub
    except ImportError:
        raise ValueError(f"{WEIGHTS}: torch is needed only for the one-time conversion of torchvision's {name} "
                         f"weights: pip install torch; or copy the converted file to {converted_file(name)} from a "
                         "machine where it was made") from None
    url = TORCHVISION_WEIGHTS[name].url
    try:
        return torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=False, check_hash=True,
                                                  weights_only=True)
    except Exception as error:  # offline, refused or a corrupt file: one line that says what to fetch
        reason = f"{type(error).__name__}: {str(error).splitlines()[0]}" if str(error) else type(error).__name__
        folder = os.path.join(torch.hub.get_dir(), "checkpoints")
        raise ValueError(f"{WEIGHTS}: cannot download {url} ({reason}); put {url.rsplit('/', 1)[1]} in {folder}, or "
                         f"the converted file at {converted_file(name)}") from None


def convert_state_dict(state_dict, name):
    """torchvision's ResNet state dict -> {our layer name: [NumPy arrays in the order of its Keras variables]}.

    A convolution's [out, in / groups, kh, kw] becomes [kh, kw, in / groups, out]; a BatchNorm's
    weight, bias, running_mean and running_var become gamma, beta, moving_mean and moving_variance.
    The classifier (fc) and the BatchNorm step counters are dropped.

    Args:
        state_dict: dict. Tensor name -> torch tensor or NumPy array, as `model.state_dict()` gives.
        name: str. Our registry name, the prefix of our layer names.
    """
    convs, norms = {}, {}
    for key, value in state_dict.items():
        module, _, tensor = key.rpartition(".")
        if module == "fc" or tensor == "num_batches_tracked":
            continue
        layer = f"{name}_{_our_part(module, key, name)}"
        conv = re.search(r"conv\d*$", layer) is not None
        if tensor not in (("weight",) if conv else BN_TENSORS):
            raise ValueError(f"torchvision {name}: unknown tensor {key!r} in the state dict (layer {layer!r})")
        array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        if conv:
            convs[layer] = [np.transpose(array, (2, 3, 1, 0))]
        else:
            norms.setdefault(layer, {})[tensor] = array
    for layer, tensors in norms.items():
        missing = [tensor for tensor in BN_TENSORS if tensor not in tensors]
        if missing:
            raise ValueError(f"torchvision {name}: layer {layer!r} gets no {missing[0]} from the state dict")
    return {**convs, **{layer: [tensors[t] for t in BN_TENSORS] for layer, tensors in norms.items()}}


def _our_part(module, key, name):
    """The part of our layer name after the registry name, for torchvision's module name."""
    if module in STEM_PART:
        return STEM_PART[module]
    match = BLOCK_MODULE.fullmatch(module)
    if not match:
        raise ValueError(f"torchvision {name}: unknown tensor {key!r} in the state dict; expected torchvision's "
                         "ResNet layout (conv1, bn1, layer<S>.<B>.conv<K> / bn<K> / downsample, fc)")
    stage, block, part = match.groups()
    return f"s{stage}_b{int(block) + 1}_{SHORTCUT_PART.get(part, part)}"


def standalone_backbone(name):
    """Our backbone `name` alone at width 1.0, any input size: the model the converted file holds."""
    inputs = keras.Input((None, None, 3), name="image")
    return keras.Model(inputs, BACKBONES[name][0](inputs, width=1.0), name=f"torchvision_{name}")


def weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]


def load_torchvision_weights(model, name, width):
    """Sets the backbone of `model` to torchvision's ImageNet weights, converted once and then cached.

    Without the converted file, torchvision's state dict is downloaded (torch needed), converted
    and saved to `converted_file(name)`; with it, torch is not imported. ValueError says, in one
    line, what does not fit (backbone, width, torch, network, the state dict).

    Args:
        model: keras.Model. Holds our backbone `name` (its layers named `<name>_...`), e.g. from `build_model`.
        name: str. Registry name of the backbone.
        width: float. The backbone width: 1.0, the published network.
    """
    check_supported(name, width)
    backbone, path = standalone_backbone(name), converted_file(name)
    if os.path.isfile(path):
        backbone.load_weights(path)
    else:
        set_converted_weights(weighted_layers(backbone), convert_state_dict(download_state_dict(name), name),
                              f"torchvision {name}", "the state dict")
        with atomic_path(path) as temporary:  # a run killed meanwhile leaves no torn file behind
            backbone.save_weights(temporary)
    ours = {layer.name: layer for layer in model.layers}
    for layer in weighted_layers(backbone):
        if layer.name not in ours:
            raise ValueError(f"{WEIGHTS}: model {model.name!r} has no layer {layer.name!r} of backbone {name!r}")
        ours[layer.name].set_weights(layer.get_weights())
