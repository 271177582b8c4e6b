"""tests/optional.py: an optional package that fails to load, in any way, skips the test with the error as reason."""

import sys

import pytest
from conftest import ROOT
from optional import optional_import

NAME = "optional_package_of_the_tests"  # written to tmp_path by each test; no such package is installed


@pytest.mark.parametrize("body, error", [
    # PyPI's torchvision 0.28 beside the CPU build of torch 2.13
    ('raise RuntimeError("operator torchvision::nms does not exist")',
     "RuntimeError: operator torchvision::nms does not exist"),
    ('raise OSError("libtorch_cpu.so: cannot open shared object file")',
     "OSError: libtorch_cpu.so: cannot open shared object file"),
    ("import dependency_missing_for_the_tests", "ModuleNotFoundError: No module named "
                                                "'dependency_missing_for_the_tests'"),
    ("undefined_name", "NameError: name 'undefined_name' is not defined"),
])
def test_a_package_that_fails_to_load_skips_with_its_error(tmp_path, monkeypatch, body, error):
    (tmp_path / f"{NAME}.py").write_text(body + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(pytest.skip.Exception) as skipped:
        optional_import(NAME, why="the comparison needs it")
    assert skipped.value.msg == f"{NAME} could not be loaded: {error} (the comparison needs it)"
    with pytest.raises(pytest.skip.Exception) as skipped:
        optional_import(NAME)
    assert skipped.value.msg == f"{NAME} could not be loaded: {error}"
    assert NAME not in sys.modules  # nothing half-loaded is left for a later test


def test_a_package_not_installed_skips():
    with pytest.raises(pytest.skip.Exception) as skipped:
        optional_import(NAME)
    assert skipped.value.msg == f"{NAME} could not be loaded: ModuleNotFoundError: No module named '{NAME}'"


def test_a_package_that_loads_is_returned(tmp_path, monkeypatch):
    (tmp_path / f"{NAME}.py").write_text("ANSWER = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, NAME, None)  # so that the test's end takes the module out again
    monkeypatch.delitem(sys.modules, NAME)
    assert optional_import(NAME).ANSWER == 42
    assert optional_import("json") is sys.modules["json"]


def test_optional_packages_are_imported_through_the_helper():
    """`pytest.importorskip` fails a test where the package fails to load by other than ImportError."""
    users = [path.name for path in sorted((ROOT / "tests").glob("*.py"))
             if "importorskip(" in path.read_text() and path.name != "test_optional.py"]
    assert users == [], "use optional.optional_import, which skips on any failure to load"
