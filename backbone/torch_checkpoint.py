"""Reads a PyTorch state dict saved in torch's legacy format into NumPy arrays, without torch.

Why by hand: the ImageNet checkpoint of EfficientNet-Lite0 (backbone/efficientnet_lite_weights.py)
is such a file, and torch (a 200 MB+ wheel) is no requirement of the project. `torch.save` wrote
this format before torch 1.6 (and still does with `_use_new_zipfile_serialization=False`): five
pickles and the raw tensor data, one after the other in the file (torch/serialization.py,
`_legacy_save` and `_legacy_load`):

1. the magic number 0x1950a86a20f9469cfc6c, 2. the format version 1001, 3. the writer's
`sys_info` ({"little_endian": ..., "type_sizes": ...}), 4. the object itself (an OrderedDict of
tensors for a state dict), whose tensors are `torch._utils._rebuild_tensor_v2(storage, offset,
size, stride, ...)` calls and whose storages are persistent ids ("storage", <torch.FloatStorage>,
key, device, number of elements, view or None), 5. the sorted list of storage keys; then, for each
key in that order, the number of elements as a little-endian int64 and the storage's raw bytes.

The object pickle is read by a restricted unpickler: it resolves `collections.OrderedDict`, the two
tensor rebuild functions and the storage classes, and refuses any other global (a pickle can name
any function; `torch.load` with `weights_only=True` restricts it likewise). Zip-format files (the
default of `torch.save` since torch 1.6) are refused with a line saying so.
"""

import collections
import pickle
import zipfile
from typing import NamedTuple

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
# torch's storage classes -> the NumPy type of their elements (bfloat16 is widened to float32 when read)
STORAGE_TYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class Storage(NamedTuple):
    """A storage named by the object pickle; its data comes later in the file."""

    key: str
    kind: str  # the torch storage class name, e.g. "FloatStorage"
    view: tuple  # (offset, number of elements) of a legacy storage view into `key`, or ()


class Tensor(NamedTuple):
    """A tensor named by the object pickle: a strided view of a storage, made an array once the data is read."""

    storage: Storage
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return Tensor(storage, storage_offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data  # a saved nn.Parameter: its tensor


# The functions of torch._utils a state dict's pickle calls, by name
REBUILD_TENSOR = {"_rebuild_tensor_v2": _rebuild_tensor_v2, "_rebuild_parameter": _rebuild_parameter}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a legacy object pickle with placeholders for its tensors; refuses every other global."""

    def __init__(self, file):
        super().__init__(file)
        self.storage_types = {}  # key -> torch storage class name, for reading the data that follows

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in REBUILD_TENSOR:
            return REBUILD_TENSOR[name]
        if module == "torch" and name in STORAGE_TYPES:
            return name  # the storage class, as its name
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a state dict; expected tensors, "
                                     "storages and OrderedDict only")

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and len(saved_id) == 6 and saved_id[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {saved_id!r}; expected a tensor storage")
        _, kind, key, _location, _count, view = saved_id
        if kind not in STORAGE_TYPES:
            raise pickle.UnpicklingError(f"storage type {kind!r} is not supported; expected one of "
                                         f"{sorted(STORAGE_TYPES)}")
        self.storage_types[str(key)] = kind
        # a legacy view (view key, offset, number of elements) is a slice of the storage `key`
        return Storage(str(key), kind, tuple(view[1:]) if view is not None else ())


def read_state_dict(path):
    """{tensor name: np.ndarray} of a state dict saved by `torch.save` in the legacy format.

    Args:
        path: str. The `.pth` file.

    Raises:
        ValueError: the file is in the zip format, not a legacy torch file, cut short, or holds
            something other than a dict of tensors. pickle.UnpicklingError: it names a global
            that is not allowed.
    """
    if zipfile.is_zipfile(path):
        raise ValueError(f"{path}: a zip-format torch file (torch.save since torch 1.6); this reader reads the "
                         "legacy format only")
    with open(path, "rb") as f:
        try:  # every pickle of the file is read restricted: these three hold plain ints and a dict
            magic, version, sys_info = (_RestrictedUnpickler(f).load() for _ in range(3))
        except (pickle.UnpicklingError, EOFError, ValueError):
            magic = version = sys_info = None
        if magic != MAGIC_NUMBER or version != PROTOCOL_VERSION:
            raise ValueError(f"{path}: not a legacy torch file (magic number {magic!r}, version {version!r})")
        if not sys_info.get("little_endian", False):
            raise ValueError(f"{path}: written on a big-endian machine; expected a little-endian file")
        unpickler = _RestrictedUnpickler(f)
        state = unpickler.load()
        keys = _RestrictedUnpickler(f).load()
        data = {key: _read_storage(f, unpickler.storage_types.get(key), path) for key in keys}
    if not isinstance(state, dict) or not all(isinstance(value, Tensor) for value in state.values()):
        raise ValueError(f"{path}: holds a {type(state).__name__}, not a state dict (a dict of tensors)")
    return {name: _array(tensor, data, path) for name, tensor in state.items()}


def _read_storage(f, kind, path):
    """The next storage of the file as a 1-D array: its element count (little-endian int64), then its bytes."""
    if kind is None:
        raise ValueError(f"{path}: lists a storage that no tensor uses")
    dtype = np.dtype(STORAGE_TYPES[kind]).newbyteorder("<")
    header = f.read(8)
    count = int.from_bytes(header, "little") if len(header) == 8 else -1
    raw = f.read(count * dtype.itemsize) if count >= 0 else b""
    if count < 0 or len(raw) != count * dtype.itemsize:
        raise ValueError(f"{path}: ends before the data of every storage")
    return np.frombuffer(raw, dtype)


def _array(tensor, data, path):
    """The tensor as a NumPy array of its own (a copy of its strided view of the storage)."""
    storage = tensor.storage
    if storage.key not in data:
        raise ValueError(f"{path}: tensor storage {storage.key!r} has no data in the file")
    raw = data[storage.key]
    if storage.view:
        offset, count = storage.view
        raw = raw[offset:offset + count]
    if any(n == 0 for n in tensor.size):
        array = np.zeros(tensor.size, raw.dtype)
    else:
        last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride))
        if tensor.offset < 0 or min(tensor.stride, default=0) < 0 or last >= raw.size:
            raise ValueError(f"{path}: a tensor of size {tensor.size} and stride {tensor.stride} does not fit in "
                             f"its storage {storage.key!r} of {raw.size} elements")
        strides = tuple(s * raw.itemsize for s in tensor.stride)
        array = np.lib.stride_tricks.as_strided(raw[tensor.offset:], tensor.size, strides, writeable=False)
    array = np.array(array, dtype=raw.dtype.newbyteorder("="), order="C")  # contiguous, native order, its own memory
    if storage.kind == "BFloat16Storage":  # bfloat16 is the upper half of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def set_converted_weights(layers, converted, source, holder):
    """Sets each layer's weights from `converted` after checking all; ValueError names the first misfit.

    Args:
        layers: list of keras.layers.Layer. Every layer of our backbone that has weights.
        converted: dict. Layer name -> arrays in the layer's weight order (Keras layout).
        source: str. Whose weights, for the message: "torchvision resnet18", "efficientnet_lite0".
        holder: str. What held them: "the state dict", "the checkpoint".
    """
    for layer in layers:
        if layer.name not in converted:
            raise ValueError(f"{source}: layer {layer.name!r} gets no weights from {holder}")
        for variable, array in zip(layer.weights, converted[layer.name]):
            if tuple(variable.shape) != array.shape:
                raise ValueError(f"{source}: layer {layer.name!r} ({variable.name}) has shape "
                                 f"{tuple(variable.shape)}; {holder} gives {array.shape} (in Keras order)")
    extra = sorted(set(converted) - {layer.name for layer in layers})
    if extra:
        raise ValueError(f"{source}: {holder}'s layer {extra[0]!r} has no place in our backbone")
    for layer in layers:
        layer.set_weights(converted[layer.name])
