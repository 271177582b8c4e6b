"""The README's settings reference lists every setting of configs.py, as generated."""

import dataclasses

from conftest import ROOT

from configs import Config
from utils.config import reference_table


def test_readme_reference_is_current():
    readme = (ROOT / "README.md").read_text()
    assert reference_table() in readme, "regenerate the README table with: python -m utils.config"
    for field in dataclasses.fields(Config):
        assert f"| `{field.name}` |" in readme, field.name


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "pip install -r requirements.txt && python run.py" in readme
    assert "pip install -r requirements-dev.txt && python -m pytest" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -r requirements-dev.txt" in ci and "python -m pytest" in ci
