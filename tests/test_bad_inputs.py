"""Bad settings and inputs through `python run.py`: each stops before any work with one clear line.

Config errors stop before TensorFlow loads (about a second each); the label-file and checkpoint
cases load TensorFlow but stop before a model is built, so no run folder or backup appears.
"""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from configs import Config

# precision pinned: the exact comparisons hold on every machine (auto picks bfloat16 on CPUs with AMX)
TINY = ["demo_images=160", "image_size=32", "backbone_width=0.125", "batch_size=16", "shuffle_buffer=64",
        "precision='float32'"]
ROWS = "".join(f"img{i}.png,{i % 2},{(i + 1) % 2}\n" for i in range(16))


def run(cwd, *args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *TINY, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=env)


def last_error_line(result):
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def assert_stopped_before_training(cwd, result, code, expected):
    assert result.returncode == code, result.stdout[-2000:] + result.stderr[-2000:]
    assert last_error_line(result) == expected
    assert "Traceback" not in result.stderr
    assert not list(cwd.glob("models/*/backup")), "a training step ran"


@pytest.mark.parametrize("args, expected", [
    (["epoch=3"], "error: unknown setting 'epoch' (command line); did you mean 'epochs'?"),
    (["learning_rate=0.1"], "error: unknown setting 'learning_rate' (command line); see configs.py for the settings"),
    (["epochs='three'"], "error: epochs='three' has type str; expected int"),
    (["lr=True"], "error: lr=True has type bool; expected float"),
    (["epochs=0"], "error: epochs=0 is out of range; expected an integer >= 1"),
    (["dropout=1.5"], "error: dropout=1.5 is out of range; expected a number in [0, 1)"),
    (["save_every_steps=-1"], "error: save_every_steps=-1 is out of range; expected an integer >= 0 "
                              "(0: back up at epoch ends only)"),
    (["image_size=16"], "error: image_size=16 is out of range; expected an integer >= 32 "
                        "(pixels; the backbones downsample 32 times)"),
    (["optimizer='adamm'"], "error: optimizer='adamm' is not allowed; expected one of "
                            "['sgd', 'adam', 'adamw', 'radam', 'lion']; did you mean 'adam'?"),
    (["epochs"], "error: argument 'epochs' is not key=value (e.g. epochs=5)"),
])
def test_bad_setting_stops_with_one_line(tmp_path, args, expected):
    result = run(tmp_path, *args)
    assert_stopped_before_training(tmp_path, result, 2, expected)
    assert not (tmp_path / "models").exists()


GROUPS = ["head='groups'", "groups={'a': 3, 'b': 2}"]


@pytest.mark.parametrize("args, expected", [
    (["lr_schedule='step'"], "lr_schedule='step' with lr_steps=None: the step schedule follows the lr_steps table; "
                             "set lr_steps={epoch: multiplier of lr}, e.g. {30: 0.1, 60: 0.01}"),
    (["epochs=2", "warmup_epochs=2"], "warmup_epochs=2.0 with epochs=2: the warmup would last the whole training; "
                                      "expected warmup_epochs < epochs"),
    (["min_lr=0.1", "lr=0.01"], "min_lr=0.1 with lr=0.01: the lowest learning rate is above the peak; expected "
                                "min_lr <= lr"),
    ([*GROUPS, "mixup_alpha=0.2"], "mixup_alpha=0.2 would be ignored with head='groups': MixUp mixes label vectors, "
                                   "but a group's label is one class index; set mixup_alpha=0"),
    ([*GROUPS, "cutmix_alpha=1.0"], "cutmix_alpha=1.0 would be ignored with head='groups': CutMix mixes label "
                                    "vectors, but a group's label is one class index; set cutmix_alpha=0"),
    ([*GROUPS, "repeat_factor_threshold=0.05"],
     "repeat_factor_threshold=0.05 would be ignored with head='groups': repeat-factor sampling counts the positives "
     "of each class column, but a group's label is one class index; set repeat_factor_threshold=0"),
    ([*GROUPS, "pos_weight='auto'"], "pos_weight='auto' would be ignored with head='groups': the one-of-K losses have "
                                     "no positive weight per class; set pos_weight=None"),
    ([*GROUPS, "loss='focal'"], "focal_alpha=0.25 would be ignored with head='groups' and loss='focal': the one-of-K "
                                "focal loss has no class weighting; set focal_alpha=-1 (off)"),
    ([*GROUPS, "loss='asl'"], "asl_clip=0.05 would be ignored with head='groups' and loss='asl': the one-of-K ASL has "
                              "no probability shift; set asl_clip=0"),
    (["head='groups'"], "head='groups' with groups=None: head='groups' and a groups dict ({group: number of "
                        "classes}) go together"),
    (["head='csra'", "csra_heads=2", "csra_temperatures=[1]"],
     "csra_temperatures=[1] must list one temperature per head (csra_heads=2)"),
    (["mode=predict"], "input is empty; mode=predict needs input=<image | folder | label file>"),
    (["mode=import"], "import_source is empty; name the annotation file or folder to import"),
], ids=lambda value: " ".join(value) if isinstance(value, list) else None)
def test_settings_that_do_not_go_together_stop_before_any_data(tmp_path, args, expected):
    result = run(tmp_path, *args)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [f"error: {expected}"]
    assert not (tmp_path / "data").exists() and not (tmp_path / "models").exists()  # no demo data built, no run


@pytest.mark.parametrize("files, args, code, expected", [
    ({}, ["train_labels='missing.csv'", "val_labels=''", "test_labels=''"], 2,
     "error: train_labels='missing.csv': label file not found"),
    ({"train.csv": ""}, ["train_labels='train.csv'", "val_labels=''", "test_labels=''"], 1,
     "error: train.csv: label file is empty"),
    ({"train.csv": "image,a,b\n" + ROWS, "val.csv": "image,a,c\nimg0.png,1,0\n"},
     ["train_labels='train.csv'", "val_labels='val.csv'", "test_labels=''"], 2,
     "error: val_labels='val.csv' has classes ['a', 'c'], but the model has ['a', 'b']; all splits must name "
     "the same classes in the same order"),
    ({"train.csv": "image,a,b\n" + ROWS, "test.csv": "image,a,b,c\nimg0.png,1,0,1\n"},
     ["train_labels='train.csv'", "val_labels=''", "test_labels='test.csv'"], 2,
     "error: test_labels='test.csv' has classes ['a', 'b', 'c'], but the model has ['a', 'b']; all splits must "
     "name the same classes in the same order"),
], ids=["missing", "empty", "val-header", "test-class-count"])
def test_bad_label_file_stops_before_training(tmp_path, files, args, code, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    result = run(tmp_path, *args)
    assert_stopped_before_training(tmp_path, result, code, expected)
    assert not (tmp_path / "models").exists()


def test_checkpoint_with_other_class_count(tmp_path):
    from tiny_run import save_tiny_model, tiny_config

    config = tiny_config(tmp_path / "data")
    path, _ = save_tiny_model(config, tmp_path / "other", class_names=["a", "b", "c"])
    os.remove(tmp_path / "other" / "classes.json")  # only the model's outputs can tell
    result = run(tmp_path, "mode=test", f"checkpoint='{path}'", f"train_labels='{config.train_labels}'",
                 f"val_labels='{config.val_labels}'", f"test_labels='{config.test_labels}'")
    assert_stopped_before_training(
        tmp_path, result, 2, f"error: checkpoint={path!r} predicts 3 classes, but the label file has 10")


def test_folder_of_another_run(tmp_path):
    previous = dataclasses.replace(Config(), demo_images=160, image_size=32, backbone_width=0.125, batch_size=16,
                                   shuffle_buffer=64, run_name="taken", val_labels="", test_labels="", lr=0.5,
                                   precision="float32")
    folder = tmp_path / "models" / "taken"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dataclasses.asdict(previous)))
    result = run(tmp_path, "run_name=taken", "val_labels=''", "test_labels=''")
    assert result.returncode == 2, result.stderr[-2000:]
    assert last_error_line(result) == (
        "error: models/taken holds a run with different settings (lr: 0.5 -> 0.004); use another run_name, "
        "or overwrite=True to move that run aside")
    assert sorted(os.listdir(folder)) == ["config.json"]  # nothing of the old run touched, no step trained
