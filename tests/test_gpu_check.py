"""benchmarks/gpu_check.sh without a GPU: one "no GPU" line, exit 0, within seconds, nothing written.

The GPU path itself runs only on a GPU machine (BENCHMARKS.md); here the parsing of the scripts it
runs is checked against the lines those scripts print.
"""

import importlib
import os
import subprocess
import sys
import time

import pytest
from conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def repository_files():
    """Every file of the working tree but .git and the virtual environment (bytecode and ignored files too)."""
    found = set()
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if not (folder == str(ROOT) and name in (".git", ".venv"))]
        found.update(os.path.join(folder, name) for name in files)
    return found


def run_check(env_changes, *args, timeout=300):
    env = {**os.environ, "PYTHON": sys.executable, **env_changes}
    start = time.monotonic()
    result = subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    return result, time.monotonic() - start


def test_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == ""


def test_without_nvidia_smi_it_stops_at_once(tmp_path):
    before = repository_files()
    result, seconds = run_check({"NVIDIA_SMI": str(tmp_path / "missing" / "nvidia-smi")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["gpu_check: no GPU (nvidia-smi is missing or lists none); nothing was run"]
    assert result.stderr == "" and seconds < 5
    assert repository_files() == before


def test_when_tensorflow_sees_no_gpu_it_stops_after_the_import(tmp_path):
    fake = tmp_path / "nvidia-smi"  # a machine whose driver answers but whose GPU TensorFlow cannot use
    fake.write_text("#!/bin/sh\necho '0, NVIDIA Test GPU, 1024 MiB, 1.0'\n")
    fake.chmod(0o755)
    start = time.monotonic()  # TensorFlow's start here and now, the yardstick for "at once"
    subprocess.run([sys.executable, "-c", "import tensorflow as tf; tf.config.list_physical_devices('GPU')"],
                   capture_output=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1"}, timeout=300, check=True)
    tensorflow_start = time.monotonic() - start
    before = repository_files()
    result, seconds = run_check({"NVIDIA_SMI": str(fake), "CUDA_VISIBLE_DEVICES": "-1"})
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith("gpu_check: no GPU: TensorFlow ") and line.endswith(
        "sees none (nvidia-smi: 0, NVIDIA Test GPU, 1024 MiB, 1.0); nothing was run")
    assert result.stderr == ""
    assert seconds < tensorflow_start + 15, (seconds, tensorflow_start)  # no training: that takes minutes
    assert repository_files() == before


def test_help_answers_without_tensorflow():
    start = time.monotonic()
    result = subprocess.run(["bash", str(SCRIPT), "--help"], env={**os.environ, "PYTHON": sys.executable},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and time.monotonic() - start < 5
    for option in ("--batch", "--steps", "--warmup", "--demo-images", "--pipeline-images", "--budget", "--allow-cpu"):
        assert option in result.stdout
    direct = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--help"], capture_output=True,
                            text=True, timeout=60)
    assert direct.returncode == 0 and direct.stdout == result.stdout


@pytest.fixture(scope="module")
def bench_gpu():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        yield importlib.import_module("bench_gpu")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_the_lines_it_reads_are_the_lines_the_scripts_print(bench_gpu):
    # run.py (Keras's verbose=2 epoch line and the trainer's summary), bench_train.py, bench_pipeline.py
    training = ("Training resnet18_linear on 4200 images, 10 classes, 65 steps per epoch of 64 images (1 replicas, "
                "float32); run folder models/gpu_check\n65/65 - 21s - 312ms/step - loss: 0.51 - val_mAP: 0.27\n"
                "Test mAP: 0.2711 over 1200 images (CF1 and OF1 at the per-class fitted thresholds)")
    epoch = bench_gpu.EPOCH_LINE.search(training)
    assert epoch.groups() == ("65", "21", "312", "ms") and bench_gpu.UNIT_SECONDS["ms"] == 1e-3
    assert bench_gpu.STEPS_LINE.search(training).groups() == ("65", "64")
    assert bench_gpu.TEST_MAP.search(training).group(1) == "0.2711"
    step = ("resnet50 width 1.0 224px batch 128 float32 batchnorm=fused jit_compile=false (resolved False): 1234.5 "
            "images/s (median step 104 ms; mean 1200.0 images/s over 30 steps), peak memory 20480 MiB (GPU allocator)")
    assert bench_gpu.STEP_DETAIL.search(step).groups() == ("104", "20480")
    pipeline = ("files: 2500 images/s (1920 images of labels.csv, resized to 224px, batch 128, augment off)\n"
                "tfrecord: 2600 images/s (1920 images of labels.csv, resized to 224px, batch 128, augment off)")
    assert bench_gpu.PIPELINE_LINE.findall(pipeline) == [("files", "2500"), ("tfrecord", "2600")]


def test_table_marks_failed_and_skipped_steps(bench_gpu):
    rows = [bench_gpu.row("Keras ResNet-50", 1234.4, "median step 103.7 ms"),
            bench_gpu.row("PyTorch ResNet-50", detail="skipped: torch is not installed"),
            bench_gpu.row("demo", detail="failed (exit 1)", ok=False)]
    assert bench_gpu.table(rows).splitlines() == [
        "| step | images/s | detail |", "|---|---|---|", "| Keras ResNet-50 | 1234 | median step 103.7 ms |",
        "| PyTorch ResNet-50 |  | skipped: torch is not installed |", "| demo |  | failed (exit 1) **(failed)** |"]
    budget = bench_gpu.Budget(5)
    assert budget.spent() and not bench_gpu.timed_out("x", budget)["ok"]
