"""Config parsing: overrides, config files, and one clear line for each kind of mistake."""

import ast
import dataclasses
import subprocess
import sys

import pytest
from conftest import ROOT

from configs import Config
from utils.config import RENAMED, ConfigError, _check_type, load_config, reference_table, renamed_settings
from utils.run_folder import changed_settings


def test_defaults_and_overrides():
    config = load_config(["epochs=3", "mode=test", "lr=1", "crop_scale=None", "class_names=['a', 'b']"])
    assert config.epochs == 3 and config.mode == "test"
    assert config.lr == 1.0 and isinstance(config.lr, float)  # an int is accepted where a float is expected
    assert config.crop_scale is None
    assert config.class_names == ["a", "b"]


def test_tuple_setting_accepts_list():
    assert load_config(["crop_scale=[0.5, 1.0]"]).crop_scale == (0.5, 1.0)


@pytest.mark.parametrize("args, expected", [
    (["epoch=3"], "unknown setting 'epoch' (command line); did you mean 'epochs'?"),
    (["epochs=2.5"], "epochs=2.5 has type float; expected int"),
    (["epochs=True"], "epochs=True has type bool; expected int"),
    (["lr=-1"], "lr=-1 is out of range; expected a number > 0"),
    (["mode=tset"], "mode='tset' is not allowed; expected one of"),
    (["backbone=resnt50"], "; did you mean 'resnet50'?"),
    (["formats=['keras', 'pdf']"], "formats=['keras', 'pdf'] is out of range; expected a non-empty list from "
                                   "keras, savedmodel, tflite_float32, tflite_float16, tflite_dynamic_int8, "
                                   "tflite_int8, onnx"),
    (["formats=()"], "formats=() is out of range; expected a non-empty list from keras, savedmodel,"),
    (["formats='keras'"], "formats='keras' has type str; expected tuple"),
    (["crop_scale=(0.9, 0.5)"], "crop_scale=(0.9, 0.5) is out of range"),
    (["run_name=a/b"], "run_name='a/b' is out of range; expected a non-empty folder name"),
    (["epochs"], "argument 'epochs' is not key=value"),
    (["head='groups'", "groups={'body colour': 3}"], "groups={'body colour': 3} is out of range; expected None or "
     "{group name: number of classes >= 2}, e.g. {\"colour\": 12, \"type\": 6}; a group name is letters, digits"),
])
def test_bad_values_name_key_and_allowed(args, expected):
    with pytest.raises(ConfigError) as info:
        load_config(args)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_tuple_entries_are_checked_against_their_type():
    assert load_config(["formats=['keras', 'onnx']"]).formats == ("keras", "onnx")  # a list becomes a tuple
    assert _check_type("scales", [1, 0.5], tuple[float, ...]) == (1.0, 0.5)
    with pytest.raises(ConfigError, match=r"^scales=\(1, 'a'\) has an entry of type str; expected tuple of float$"):
        _check_type("scales", (1, "a"), tuple[float, ...])


def test_every_setting_has_a_comment_above_it():
    lines = (ROOT / "configs.py").read_text().splitlines()
    page = next(node for node in ast.parse("\n".join(lines)).body if isinstance(node, ast.ClassDef))
    bare = [node.target.id for node in page.body if isinstance(node, ast.AnnAssign)
            if not lines[node.lineno - 2].strip().startswith("#") or lines[node.lineno - 2].strip().startswith("# ---")]
    assert bare == []
    inline = [number for number, line in enumerate(lines, 1) if "  # " in line and not line.strip().startswith("#")]
    assert inline == []  # the explanation goes above the setting, not beside it


def test_reference_table_joins_the_comment_block_and_adds_the_choices():
    rows = {row.split(" | ")[0][3:-1]: row.split(" | ") for row in reference_table().splitlines()
            if row.startswith("| `")}
    assert list(rows) == [field.name for field in dataclasses.fields(Config)]
    assert rows["formats"][1] == ('`("keras", "savedmodel", "tflite_float32", "tflite_float16", "tflite_dynamic_int8", '
                                  '"tflite_int8")`')
    assert rows["run_name"][2] == ("Names the output folders models/<run_name>/ and logs/<run_name>/; the same name "
                                   "resumes the same run. |")
    assert rows["flip"][2].endswith("Choices: `none`, `horizontal`, `vertical`, `both`. |")
    assert "Entries from: `keras`, `savedmodel`," in rows["formats"][2]
    assert "P(j\\|i)" in rows["gcn_threshold"][2]  # a | inside a cell is escaped for the Markdown table


def test_config_file_dataclass_and_plain(tmp_path):
    dataclass_file = tmp_path / "mine.py"
    dataclass_file.write_text(
        "from dataclasses import dataclass\n@dataclass\nclass Config:\n"
        "    epochs: int = 7  # more\n    lr: float = 0.1\n")
    config = load_config([f"config={dataclass_file}", "lr=0.5"])
    assert config.epochs == 7 and config.lr == 0.5  # the command line wins over the file
    plain = tmp_path / "plain.py"
    plain.write_text("epochs = 4\nbatch_size = 16\n")
    assert load_config([f"config={plain}"]).batch_size == 16


def test_config_file_unknown_key_names_file(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("epochz = 4\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'epochz' \(.*bad.py\); did you mean 'epochs'"):
        load_config([f"config={bad}"])


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config='nope.py': file not found"):
        load_config(["config=nope.py"])


def test_run_py_prints_one_line_and_exits_2(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "batchsize=8"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: unknown setting 'batchsize' (command line); did you mean 'batch_size'?"
    assert not (tmp_path / "models").exists() and not (tmp_path / "data").exists()  # no work started


@pytest.mark.parametrize("old, new", sorted(RENAMED.items()))
def test_a_renamed_setting_stops_with_one_line_naming_the_new_one(tmp_path, old, new):
    assert new in {field.name for field in dataclasses.fields(Config)} and old not in vars(Config())
    with pytest.raises(ConfigError, match=rf"^setting '{old}' \(command line\) is now called '{new}'; write {new}="):
        load_config([f"{old}='fixed'"])
    path = tmp_path / "mine.py"
    path.write_text(f"{old} = 'fixed'\n")
    with pytest.raises(ConfigError, match=rf"^setting '{old}' \({path}\) is now called '{new}'"):
        load_config([f"config={path}"])


def test_a_run_saved_under_old_setting_names_resumes_under_the_new_ones():
    saved = {"weight_decay_conv": 5e-5, "thresholds": "fitted", "lr": 0.004}
    assert renamed_settings(saved) == {"l2_kernels": 5e-5, "class_thresholds": "fitted", "lr": 0.004}
    now = dataclasses.asdict(Config())
    assert changed_settings(renamed_settings(saved), now) == []
    assert changed_settings(renamed_settings({**saved, "weight_decay_conv": 1e-3}), now) == ["l2_kernels"]
