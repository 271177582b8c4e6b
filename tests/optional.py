"""Optional packages in tests: one that cannot be loaded, for whatever reason, skips the test that needs it.

`pytest.importorskip` skips on ImportError only, but an installed package can fail to load in other ways:
PyPI's torchvision 0.28 beside the CPU build of torch 2.13 raises RuntimeError ("operator torchvision::nms
does not exist") on `import torchvision`, and the tests that needed it failed instead of skipping.
"""

import importlib

import pytest


def optional_import(name, why=""):
    """The module `name`; when it cannot be loaded, the calling test is skipped with the error as its reason.

    Args:
        name: str. A module, e.g. "torchvision" or "torch.hub".
        why: str. Why the test needs it, added to the reason ("not a requirement: ..."); "": nothing added.
    """
    __tracebackhide__ = True  # pytest reports the skip at the test's line, not at this one
    try:
        return importlib.import_module(name)
    except Exception as error:  # any failure to load, not only ImportError
        reason = f"{name} could not be loaded: {type(error).__name__}: {error}"
        pytest.skip(f"{reason} ({why})" if why else reason)
