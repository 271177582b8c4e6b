"""The README: its settings reference is configs.py's, and its commands, settings, modes and paths exist.

Every `python run.py ...` command it shows loads as a config (the settings exist, the values type-check and the
rules between settings hold); every `key=value` it names elsewhere is a setting; every `mode=` is a mode of run.py;
the modes table lists run.py's modes; the files and folders it names are in the repository.
"""

import dataclasses
import re
import shlex

from conftest import ROOT

from configs import Config
from run import MODES
from utils.config import load_config, reference_table

README = (ROOT / "README.md").read_text()
SETTINGS = {field.name for field in dataclasses.fields(Config)}
RUN_KEYS = {"config", "help"}  # run.py's own: another settings file, and help=<setting or mode>
# `key=value` spans of the README that are not settings
NOT_SETTINGS = {"key": "the form itself, key=value", "flagged": "a column of label_errors.csv, flagged=no"}
USER_FILES = {"my_config.py": "configs.py"}  # "copy configs.py, edit it, and run python run.py config=my_config.py"
SOURCE_FOLDERS = ("backbone", "benchmarks", "dataset", "examples", "learning_notes", "multi_label", "tests", "utils",
                  ".ci")  # in the repository; data/, models/ and logs/ are what runs make
FILE = re.compile(r"[\w.-]+\.(?:py|md|sh|toml|txt)")  # a source file's name; outputs are .csv, .json, .png ...


def table(header):
    """The README's table that starts at the line `header`, up to the blank line after it."""
    start = README.index(header + "\n")
    return README[start:README.index("\n\n", start)]


def rows(header):
    """The cells of each row of a README table, below its `|---|` line."""
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in table(header).splitlines()[2:]]


def code(text):
    """The code of `text`: the lines of its fenced blocks (continuations joined) and its inline spans."""
    fenced = re.compile(r"^```\w*\n(.*?)^```", re.S | re.M)
    lines = [line for block in fenced.findall(text) for line in block.replace("\\\n", " ").splitlines()]
    return lines + re.findall(r"`([^`]+)`", fenced.sub("", text))  # an inline span may wrap onto the next line


REFERENCE = table("| setting | default | what it does |")
LAYOUT = table("| folder | what is there |")
CODE = code(README.replace(REFERENCE, "").replace(LAYOUT, ""))  # the reference is configs.py's own text
COMMANDS = [shlex.split(chunk.split("python run.py", 1)[1], comments=True) for chunk in CODE
            if "python run.py" in chunk]


def settings_named(chunk):
    """The keys of a `python run.py` command's arguments, or of a span of `key=value` words only; else none."""
    if "python run.py" in chunk:
        words = shlex.split(chunk.split("python run.py", 1)[1], comments=True)
    else:
        words = shlex.split(chunk)
        if not all(re.fullmatch(r"\w+=.*", word, re.S) for word in words):
            return []  # prose in code, e.g. `photo.jpg  colour=2 (0.91), type=0 (0.77)`: a groups prediction
    return [word.split("=", 1)[0] for word in words if "=" in word]


def test_readme_reference_is_current():
    readme = (ROOT / "README.md").read_text()
    assert reference_table() in readme, "regenerate the README table with: python -m utils.config"
    for field in dataclasses.fields(Config):
        assert f"| `{field.name}` |" in readme, field.name
    # the whole table, no row after the generated ones (a setting removed from configs.py left behind)
    assert REFERENCE == reference_table(), "regenerate the README table with: python -m utils.config"
    assert {re.match(r"\| `(\w+)` \|", row)[1] for row in REFERENCE.splitlines() if row.startswith("| `")} == SETTINGS


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "pip install -r requirements.txt && python run.py" in readme
    assert "pip install -r requirements-dev.txt && python -m pytest" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -q -r requirements-dev.txt" in ci and "python -m pytest" in ci


def test_every_run_command_loads_as_a_config():
    assert len(COMMANDS) >= 10  # the parsing finds the commands: set-up, recipes, the steps, the modes
    for args in COMMANDS:
        args = [arg for arg in args if arg != "..."]  # `python run.py ...`: any settings
        if args in (["--help"], []):
            continue
        keys = [arg.split("=", 1)[0] for arg in args]
        assert all("=" in arg for arg in args) and set(keys) <= SETTINGS | RUN_KEYS, args
        if "help" in keys:
            assert len(args) == 1 and args[0][5:] in SETTINGS | set(MODES), args
            continue
        files = {key: value for key, value in (arg.split("=", 1) for arg in args) if key == "config"}
        for path in files.values():
            assert (ROOT / USER_FILES.get(path, path)).is_file(), path
        load_config([f"config={ROOT / USER_FILES.get(arg[7:], arg[7:])}" if arg.startswith("config=") else arg
                     for arg in args])  # ConfigError: a stale setting, a wrong type or a broken rule


def test_every_setting_named_is_one_of_configs():
    named = {}
    for chunk in CODE:
        for key in settings_named(chunk):
            named.setdefault(key, chunk)
    assert {"backbone_weights", "precision", "head", "loss", "import_val_fraction"} <= named.keys()
    unknown = {key: chunk for key, chunk in named.items() if key not in SETTINGS | RUN_KEYS | NOT_SETTINGS.keys()}
    assert unknown == {}, "the README names settings configs.py lacks"


def test_modes_are_run_modes():
    named = {mode for chunk in CODE for mode in re.findall(r"\bmode=['\"]?(\w+)", chunk)}
    assert named and named <= set(MODES), named - set(MODES)
    listed = {re.fullmatch(r"`(\w+)`( \(default\))?", row[0])[1]: bool(row[0].endswith("(default)"))
              for row in rows("| mode | what it does |")}
    assert listed.keys() == MODES.keys()  # the modes table: one row per mode of run.py
    assert [mode for mode, default in listed.items() if default] == [Config().mode]


def test_files_and_folders_named_exist():
    named = {word.rstrip("/") for chunk in CODE for word in re.split(r"[\s=\"'`(),]+", chunk)
             if word.split("/")[0] in SOURCE_FOLDERS or "/" not in word and FILE.fullmatch(word)}
    assert {"examples/photos_config.py", "learning_notes/09-encoders.md", "test_precision.py"} <= named
    missing = []
    for name in sorted(named):
        if "/" not in name and name.startswith("test_"):
            name = f"tests/{name}"
        if not (ROOT / USER_FILES.get(name, name)).exists():
            missing.append(name)
    assert missing == []


def test_layout_names_what_each_folder_holds():
    checked = 0
    for folders, what in rows("| folder | what is there |"):
        folders = [ROOT / name.strip("`") for name in folders.split(", ")]
        for name in re.findall(r"`([\w.-]+/?)`", what):
            if name.endswith("/") or FILE.fullmatch(name):
                assert any((folder / name).exists() for folder in folders), (name, folders)
                checked += 1
    assert checked >= 10


def test_tools_named_run_as_modules():
    modules = sorted({chunk.split()[2] for chunk in CODE if chunk.startswith("python -m ")
                      and chunk.split()[2].split(".")[0] in SOURCE_FOLDERS})
    assert len(modules) >= 5, modules  # the stand-alone tools, benchmarks, the reference's generator
    for module in modules:
        path = ROOT.joinpath(*module.split("."))
        source = path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__main__.py"
        assert source.is_file(), module
        assert source.name == "__main__.py" or 'if __name__ == "__main__":' in source.read_text(), module
