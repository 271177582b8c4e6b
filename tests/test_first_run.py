"""A new user's first five minutes through `python run.py`: help, a quiet start, answers on the screen.

One tiny training run (2 epochs on 42 images, then the test; conftest's `tiny_trained_run`, which
test_end_to_end resumes) is shared by the tests of the quiet start, the lines outside a terminal, the
test summary and predict; help needs no TensorFlow.
"""

import csv
import json
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, run_in_process, user_env
from tiny_run import TINY

import run
from utils.console import VERBOSE_VARIABLE

TINY_ARGS = [f"{key}={value}" for key, value in TINY.items()]
# What TensorFlow's start-up chatter looks like: none of it may reach a quiet console.
NOISE = re.compile(r"cuInit|oneDNN|absl|^[IWE]0000 |cuda drivers", re.MULTILINE)


def run_py(cwd, *args, env=None, command=None):
    command = command or [sys.executable, str(ROOT / "run.py")]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=env or user_env())


@pytest.fixture(scope="module")
def trained(tiny_trained_run):
    """(folder, result) of the session's tiny 2-epoch training run (conftest), its stdout a pipe (not a terminal)."""
    folder, _, result = tiny_trained_run
    return folder, result


@pytest.mark.parametrize("word", ["--help", "-h", "help"])
def test_help_names_every_mode_with_an_example(tmp_path, word):
    result = run_py(tmp_path, word)
    assert result.returncode == 0 and result.stderr == ""
    out = result.stdout
    assert out.startswith("usage: python run.py [config=file.py] [key=value ...]")
    for name, mode in run.MODES.items():
        assert re.search(rf"^  {name} +{re.escape(mode.summary)}$", out, re.MULTILINE), name
        assert mode.example in out
        assert (f"mode={name}" in mode.example) == (name != "train")
    for part in ("key=value", "config=file.py", "help=<setting>", "README.md", "configs.py", VERBOSE_VARIABLE):
        assert part in out, part
    assert not (tmp_path / "models").exists() and not (tmp_path / "data").exists()


def test_help_does_not_load_tensorflow(tmp_path):
    result = run_py(tmp_path, "--help", command=[sys.executable, "-X", "importtime", str(ROOT / "run.py")])
    assert result.returncode == 0
    imported = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert "utils" in imported and not imported & {"tensorflow", "keras", "numpy"}


def test_help_on_one_setting(tmp_path):
    result = run_py(tmp_path, "help=optimizer")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:5] == [
        'optimizer = "adam"',
        "  type:     one of the choices",
        "  choices:  sgd, adam, adamw, radam, lion",
        "  section:  optimisation",
        ""]
    assert "radam is rectified Adam (Liu 2020)" in " ".join(result.stdout.split())
    lr = run_py(tmp_path, "help=lr").stdout
    assert "lr = 4e-3" in lr and "type:     float" in lr and "allowed:  a number > 0" in lr
    assert "Peak learning rate (after warmup)." in lr


def test_help_on_a_mode(tmp_path):
    result = run_py(tmp_path, "help=predict")
    assert result.returncode == 0
    assert result.stdout.splitlines()[:2] == [f"mode=predict: {run.MODES['predict'].summary}",
                                              f"  {run.MODES['predict'].example}"]


@pytest.mark.parametrize("typo, hint", [("help=lrr", "did you mean 'lr'?"), ("help=predcit", "did you mean 'predict'?"),
                                        ("help=nothing_like_it", "see configs.py for the settings")])
def test_help_on_a_misspelt_name_suggests_the_closest(tmp_path, typo, hint):
    result = run_py(tmp_path, typo)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == f"error: unknown setting {typo[5:]!r} (help=); {hint}"


def test_training_console_is_quiet(trained):
    _, result = trained
    console = result.stdout + result.stderr
    assert NOISE.findall(console) == [], console[:3000]
    assert "Traceback" not in console and result.stderr == ""


def test_verbose_variable_brings_tensorflow_start_up_lines_back_and_errors_always_show(data_dir, tmp_path):
    """MULTI_LABEL_VERBOSE=1 shows every start-up line TensorFlow prints alone (if this TensorFlow prints any)."""
    alone = run_py(tmp_path, "-c", "import tensorflow as tf; tf.config.list_physical_devices()",
                   command=[sys.executable], env=user_env(TF_CPP_MIN_LOG_LEVEL="0"))
    # a run that stops with an error once TensorFlow has started: no model to test
    args = ["mode=test", "run_name=untrained", "train_labels=''", "val_labels=''",
            f"test_labels={data_dir / 'test.csv'}"]
    verbose = run_py(tmp_path, *args, env=user_env(**{VERBOSE_VARIABLE: "1"}))
    quiet = run_py(tmp_path, *args)
    error = ("error: checkpoint='models/untrained/best.keras': model file not found; train first or set "
             "checkpoint=<path>")
    assert verbose.returncode == quiet.returncode == 2
    assert verbose.stderr.strip().splitlines()[-1] == error and quiet.stderr.strip() == error

    def sources(text):  # (severity, file:line) of each TensorFlow log line
        return set(re.findall(r"^([IWEF])\d{4} [\d:.]+\s+\d+ ([\w.-]+:\d+)\]", text, re.MULTILINE))

    assert sources(alone.stderr) <= sources(verbose.stderr)
    assert ("oneDNN" in alone.stderr) <= ("oneDNN" in verbose.stderr)
    assert NOISE.findall(quiet.stdout + quiet.stderr) == []


def test_outside_a_terminal_training_prints_epoch_lines_and_progress(trained):
    _, result = trained
    out = result.stdout
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    steps = int(re.search(r"(\d+) steps per epoch", out).group(1))
    epoch_lines = re.findall(rf"^{steps}/{steps} - \d+s - .*loss: [\d.]+ .*val_mAP: [\d.]+$", out, re.MULTILINE)
    assert len(epoch_lines) == 2, out[-3000:]
    progress = re.findall(rf"^Epoch (\d): step (\d+)/{steps}, [\d.]+ images/s, loss [\d.]+, [\d.]+ min into the "
                          "epoch$", out, re.MULTILINE)
    assert progress == [(str(epoch), str(step)) for epoch in (1, 2) for step in range(1, steps)]  # the last: Keras's


def test_test_prints_the_summary_table_and_the_report_path(trained):
    folder, result = trained
    out = result.stdout
    summary = out[out.index("Test mAP: "):].splitlines()
    metrics = json.loads((folder / "models" / "tiny" / "metrics.json").read_text())
    assert summary[0] == (f"Test mAP: {metrics['mAP']:.4f} over 12 images (CF1 and OF1 at the per-class fitted "
                          "thresholds)")
    assert [line.split() for line in summary[1:4]] == [
        ["mAP", f"{metrics['mAP']:.4f}"], ["CF1", f"{metrics['at_threshold']['CF1']:.4f}"],
        ["OF1", f"{metrics['at_threshold']['OF1']:.4f}"]]
    rated = sorted((ap, name) for name, ap in metrics["AP"].items() if ap is not None)
    assert summary[4] == f"  weakest 5 of {len(rated)} classes by AP (every class: metrics.json and the report):"
    shown = [line.split() for line in summary[5:10]]
    assert [float(ap) for _, ap in shown] == sorted(round(ap, 4) for ap, _ in rated)[:5]
    assert {name for name, _ in shown} <= set(metrics["AP"])
    assert not any(line.split()[:1] == [name] for line in summary[10:] for name in metrics["AP"])  # no full list
    assert "Wrote models/tiny/report/report.md and its figures" in out


def predict(folder, images, **extra):
    """What mode=predict prints: run.py in this process, as predict's lines are its own, not the command line's."""
    args = ["mode=predict", "run_name=tiny", f"input={images}", *TINY_ARGS[:2], "train_labels=''", "val_labels=''",
            "test_labels=''", *(f"{k}={v}" for k, v in extra.items())]
    status, output = run_in_process(folder, *args)
    assert status == 0, output[-3000:]
    return output


def test_predict_on_a_few_images_prints_their_labels_most_probable_first(trained, data_dir):
    folder, _ = trained
    images = folder / "few"
    images.mkdir()
    for name in ("00000.jpg", "00001.jpg", "00002.jpg"):
        shutil.copy(data_dir / "test" / name, images / name)
    out = predict(folder, images, output="few.csv").splitlines()
    lines = out[out.index("mode=predict run_name=tiny") + 1:]
    with open(folder / "few.csv") as f:
        rows = list(csv.reader(f))
    classes = rows[0][2:]
    assert [line.split()[0] for line in lines[:3]] == ["00000.jpg", "00001.jpg", "00002.jpg"]
    for line, row in zip(lines, rows[1:]):
        shown = line.split(None, 1)[1]
        probability = dict(zip(classes, map(float, row[2:])))
        if shown.startswith("no label above its threshold"):
            assert row[1] == ""
            best = max(classes, key=probability.get)
            assert shown == f"no label above its threshold (most probable: {best} {probability[best]:.2f})"
            continue
        pairs = [pair.split() for pair in shown.split(", ")]
        assert [name for name, _ in pairs] == sorted(row[1].split(";"), key=lambda c: -probability[c])
        assert [p for _, p in pairs] == [f"{probability[name]:.2f}" for name, _ in pairs]
    assert re.fullmatch(r"Labelled 3 images \(0 skipped\) with per-class fitted thresholds: [\d.]+ labels per "
                        r"image, \d+ with none; wrote few.csv", lines[3])
    assert len(lines) == 4


def test_predict_on_a_folder_of_many_images_prints_one_summary_line(trained, data_dir):
    folder, _ = trained
    images = folder / "many"
    images.mkdir()
    for path in sorted((data_dir / "train").glob("*.jpg"))[:21]:
        shutil.copy(path, images / path.name)
    out = predict(folder, images).strip().splitlines()
    assert out[0] == "mode=predict run_name=tiny" and len(out) == 2, out
    assert re.fullmatch(r"Labelled 21 images \(0 skipped\) with per-class fitted thresholds: [\d.]+ labels per "
                        r"image, \d+ with none; wrote models/tiny/predict.csv", out[1])
    assert (folder / "models" / "tiny" / "predict.csv").is_file()


def test_help_examples_are_commands_the_loader_accepts():
    from utils.config import load_config

    for name, mode in run.MODES.items():
        words = shlex.split(mode.example)
        assert words[:2] == ["python", "run.py"]
        assert load_config(words[2:]).mode == name


def test_readme_first_screen_shows_help_and_the_verbose_variable():
    from multi_label.training.callbacks import PROGRESS_INTERVAL_S

    readme = (ROOT / "README.md").read_text()
    first_screen = readme[:readme.index("\n## ", readme.index("## Set-up"))]
    setup = first_screen[first_screen.index("```bash"):]
    assert setup.index("pip install -r requirements.txt") < setup.index("`python run.py --help`")
    assert "`python run.py help=lr`" in first_screen
    assert f"{VERBOSE_VARIABLE}=1 python run.py" in first_screen
    assert f"a progress line every {PROGRESS_INTERVAL_S // 60} minutes within an epoch" in first_screen
