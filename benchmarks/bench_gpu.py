"""One GPU check in one run: the device, a demo epoch, ResNet-50 training speed, the input pipeline, PyTorch.

Usage: bash benchmarks/gpu_check.sh [options]       (checks nvidia-smi first, then runs this)
       python3 benchmarks/bench_gpu.py [--batch 128] [--steps 30] [--warmup 5] [--demo-images 4000]
           [--pipeline-images 2000] [--image-size 224] [--budget 450] [--allow-cpu]

When TensorFlow sees no GPU it prints one line containing "no GPU" and exits 0 before anything else
starts (with --allow-cpu it goes on, to check this script on a CPU with small sizes, e.g.
`--allow-cpu --image-size 32 --batch 4 --steps 2 --warmup 1 --demo-images 200 --pipeline-images 16`;
those figures say nothing about a GPU). Otherwise, each step in a fresh process (so that none holds
GPU memory for the next), all inside one temporary folder that is removed at the end (nothing of the
user's is read or written):

1. the device: the nvidia-smi line and the GPUs TensorFlow sees, with its CUDA and cuDNN versions;
2. `python run.py epochs=1 demo_images=N run_name=gpu_check`: demo data, one epoch, the test;
3. bench_train.py: the project's ResNet-50 at 224 px, synthetic data, in float32 and mixed_float16
   (XLA off) and mixed_float16 with jit_compile=True;
4. bench_pipeline.py: the trainer's input pipeline at 224 px and the same batch (generated JPEGs);
5. bench_gpu_torch.py: the same ResNet-50 in PyTorch (float32, float16 autocast) where torch is
   installed.

Then a markdown table. Exit status 0, or 1 when a step failed or ran out of `--budget` seconds (the
table says which). The defaults are meant to finish within 8 minutes on an H200 (an estimate until measured).
"""

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NO_GPU_EXIT = 0  # "no GPU" is not a failure: the check has nothing to measure
MIN_STEP_SECONDS = 20  # a step is not started with less of the budget left
# Run in a fresh process: TensorFlow's GPUs and build, as JSON on the last line.
DEVICE_CHECK = """
import json, sys
sys.path.insert(0, sys.argv[1])
from utils.console import start_tensorflow
gpus = start_tensorflow()
import tensorflow as tf
build = tf.sysconfig.get_build_info()
details = [tf.config.experimental.get_device_details(d) for d in tf.config.list_physical_devices("GPU")]
print(json.dumps({"gpus": gpus, "tensorflow": tf.__version__, "cuda": build.get("cuda_version"),
                  "cudnn": build.get("cudnn_version"),
                  "compute_capability": [list(d.get("compute_capability") or ()) for d in details]}))
"""
EPOCH_LINE = re.compile(r"^(\d+)/\1 - (\d+)s - ([\d.]+)(s|ms|us)/step", re.M)  # Keras's verbose=2 epoch line
UNIT_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
STEPS_LINE = re.compile(r"(\d+) steps per epoch of (\d+) images")
TEST_MAP = re.compile(r"Test mAP: ([\d.]+)")
PIPELINE_LINE = re.compile(r"^(files|tfrecord): (\d+) images/s", re.M)
STEP_DETAIL = re.compile(r"median step ([\d.]+) ms.*peak memory (\d+) MiB")


def tensorflow_device():
    """TensorFlow's view of the GPUs, from a fresh process; exits with one line if TensorFlow cannot start."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-c", DEVICE_CHECK, ROOT], capture_output=True, text=True, env=env,
                            timeout=300)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        problem = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"gpu_check: TensorFlow did not start ({problem})")
    return json.loads(lines[-1])


class Budget:
    """Seconds left of the whole run; each step's subprocess gets what is left as its timeout."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()

    def spent(self):
        return self.left() < MIN_STEP_SECONDS


def row(step, rate=None, detail="", ok=True):
    return {"step": step, "rate": rate, "detail": detail, "ok": ok}


def timed_out(step, budget):
    return row(step, detail=f"not finished: the time budget ran out ({max(budget.left(), 0):.0f} s left)", ok=False)


def demo_epoch(args, scratch, budget):
    """One epoch of the default training on demo data through run.py, in `scratch`."""
    step = f"demo: python run.py epochs=1 demo_images={args.demo_images} (the default settings otherwise)"
    command = [sys.executable, os.path.join(ROOT, "run.py"), "epochs=1", "run_name=gpu_check",
               f"demo_images={args.demo_images}"]
    start = time.monotonic()
    if budget.spent():
        return timed_out(step, budget)
    try:
        result = subprocess.run(command, cwd=scratch, capture_output=True, text=True, timeout=budget.left(),
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    except subprocess.TimeoutExpired:
        return timed_out(step, budget)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        last = (output.strip().splitlines() or ["no output"])[-1]
        return row(step, detail=f"failed (exit {result.returncode}): {last}", ok=False)
    epoch, steps, test_map = EPOCH_LINE.search(output), STEPS_LINE.search(output), TEST_MAP.search(output)
    gpu = next((line for line in output.splitlines() if line.startswith("Using ")), "no 'Using ... GPU' line")
    # the one epoch includes tracing and XLA compilation: its mean step is no throughput figure, so no images/s
    mean_step = (f"{steps.group(1)} steps of {steps.group(2)} images, mean step "
                 f"{float(epoch.group(3)) * UNIT_SECONDS[epoch.group(4)] * 1000:.0f} ms" if epoch and steps else "?")
    detail = (f"{gpu}; epoch {epoch.group(2) if epoch else '?'} s ({mean_step}, compilation included), "
              f"test mAP {test_map.group(1) if test_map else '?'}, whole command {time.monotonic() - start:.0f} s")
    return row(step, None, detail, ok=bool(epoch and test_map))


def measured(step, script, flags, budget, pattern=None):
    """Rows from one benchmark script run by bench_vs_torch.measure (its training rate, or `pattern`'s)."""
    from bench_vs_torch import measure  # imported here: the no-GPU path writes no bytecode next to it

    if budget.spent():
        return [timed_out(step, budget)]
    try:
        rate, _, output = measure(script, *flags, timeout=budget.left())
    except subprocess.TimeoutExpired:
        return [timed_out(step, budget)]
    if pattern is not None:
        found = pattern.findall(output)
        if not found:
            return [row(step, detail=f"no figure in its output: {(output.splitlines() or ['none'])[-1]}", ok=False)]
        return [row(f"{step}, {name}", float(value)) for name, value in found]
    if rate is None:  # "nothing to measure" (torch without CUDA) is a skip, anything else a failure
        last = (output.splitlines() or ["no output"])[-1]
        skipped = last.endswith("nothing to measure")
        return [row(step, detail=f"{'skipped' if skipped else 'not measured'}: {last}", ok=skipped)]
    detail = STEP_DETAIL.search(output)
    return [row(step, rate, f"median step {detail.group(1)} ms, peak {detail.group(2)} MiB" if detail else "")]


def resnet50_rows(args, budget):
    common = ["--backbone", "resnet50", "--width", "1.0", "--image-size", str(args.image_size),
              "--batch", str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    runs = [("float32", "false"), ("mixed_float16", "false"), ("mixed_float16", "true")]
    rows = []
    for precision, jit in runs:
        xla = ", XLA (jit_compile)" if jit == "true" else ""
        step = f"Keras ResNet-50, {args.image_size} px, batch {args.batch}, {precision}{xla}"
        rows += measured(step, "bench_train.py", common + ["--precision", precision, "--jit-compile", jit], budget)
    return rows


def pipeline_rows(args, scratch, budget):
    flags = ["--images", str(args.pipeline_images), "--image-size", str(args.image_size), "--batch", str(args.batch),
             "--folder", os.path.join(scratch, "pipeline")]
    step = f"input pipeline, {args.pipeline_images} generated 500x375 JPEGs -> {args.image_size} px, batch {args.batch}"
    return measured(step, "bench_pipeline.py", flags, budget, pattern=PIPELINE_LINE)


def torch_rows(args, budget):
    step = f"PyTorch ResNet-50, {args.image_size} px, batch {args.batch}"
    if importlib.util.find_spec("torch") is None:
        return [row(step, detail="skipped: torch is not installed in this Python (pip install torch to compare)")]
    flags = ["--image-size", str(args.image_size), "--batch", str(args.batch), "--steps", str(args.steps),
             "--warmup", str(args.warmup)]
    return (measured(f"{step}, float32", "bench_gpu_torch.py", flags + ["--precision", "float32"], budget)
            + measured(f"{step}, float16 autocast", "bench_gpu_torch.py", flags + ["--precision", "float16"], budget))


def table(rows):
    lines = ["| step | images/s | detail |", "|---|---|---|"]
    for entry in rows:
        rate = f"{entry['rate']:.0f}" if entry["rate"] else ""
        lines.append(f"| {entry['step']} | {rate} | {entry['detail'] or ''}{'' if entry['ok'] else ' **(failed)**'} |")
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128, help="ResNet-50, pipeline and PyTorch batch size")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per ResNet-50 run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (tracing, XLA, cuDNN autotuning)")
    parser.add_argument("--demo-images", type=int, default=4000, help="demo images for the one-epoch run.py run")
    parser.add_argument("--pipeline-images", type=int, default=2000, help="JPEGs generated for the pipeline figure")
    parser.add_argument("--budget", type=float, default=450, help="seconds for the whole run; later steps are cut")
    parser.add_argument("--image-size", type=int, default=224, help="ResNet-50, pipeline and PyTorch image side")
    parser.add_argument("--nvidia-smi", default="", help="the nvidia-smi line (gpu_check.sh passes it)")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="run every step without a GPU too: checks this script (with small sizes); CPU figures")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    budget = Budget(args.budget)
    device = tensorflow_device()
    if not device["gpus"] and not args.allow_cpu:
        print(f"gpu_check: no GPU: TensorFlow {device['tensorflow']} sees none (nvidia-smi: "
              f"{args.nvidia_smi or 'not run'}); nothing was run")
        return NO_GPU_EXIT
    print(f"nvidia-smi: {args.nvidia_smi or 'not run'}")
    print(f"TensorFlow {device['tensorflow']} (CUDA {device['cuda']}, cuDNN {device['cudnn']}): "
          f"{', '.join(device['gpus']) or 'no GPU (--allow-cpu)'}, compute capability "
          f"{device['compute_capability']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as scratch:
        rows = [demo_epoch(args, scratch, budget)]
        print(table(rows[-1:]).splitlines()[-1], flush=True)
        for part in (resnet50_rows(args, budget), pipeline_rows(args, scratch, budget), torch_rows(args, budget)):
            rows += part
            print("\n".join(table(part).splitlines()[2:]), flush=True)
    print(f"\nGPU check, {args.budget - budget.left():.0f} s:\n\n{table(rows)}")
    return 0 if all(entry["ok"] for entry in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
