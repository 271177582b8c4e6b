"""Times every format of an export folder (mode=convert) on this CPU at batch 1 and batch 32.

Usage: python3 benchmarks/bench_export.py models/<run_name>/export [--runs 50] [--threads N]

Each format runs in its own runtime (Keras, tf.saved_model, the TFLite interpreter, ONNX
Runtime) on random pixels of the export's image size; the SavedModel's time includes its resize.
Prints the machine, the load average before and after, and a markdown table of the median
wall-clock latency per batch, its CPU time (all threads) and the throughput the latency implies.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from utils.console import prefer_onednn  # noqa: E402

prefer_onednn()  # what run.py uses: oneDNN on every x86 CPU unless TF_ENABLE_ONEDNN_OPTS is set

from multi_label.export.formats import FILES  # noqa: E402
from multi_label.export.parity import KerasRunner, OnnxRunner, SavedModelRunner, TFLiteRunner  # noqa: E402

BATCHES = (1, 32)


def make_runner(name, path, threads):
    if name == "keras":
        return KerasRunner(path)
    if name == "savedmodel":
        return SavedModelRunner(path, "serving_default")
    if name == "onnx":
        return OnnxRunner(path, threads)
    return TFLiteRunner(path, threads)


def median_ms(run, pixels, runs, warmup=3):
    """Median wall-clock and CPU milliseconds of one call (CPU time, all threads, is steadier when shared)."""
    for _ in range(warmup):  # first calls trace graphs and allocate buffers
        run(pixels)
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        run(pixels)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1000 * float(np.median(wall)), 1000 * float(np.median(cpu))


def machine():
    cpu = platform.processor() or "unknown CPU"
    if os.path.isfile("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    import tensorflow as tf
    return f"{cpu}, {os.cpu_count()} cores visible, Python {platform.python_version()}, TensorFlow {tf.__version__}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", help="folder written by mode=convert (models/<run_name>/export)")
    parser.add_argument("--runs", type=int, default=50, help="timed calls per format at batch 1 (batch 32: a fifth)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads of TFLite and ONNX Runtime")
    parser.add_argument("--formats", nargs="*", default=None, help="formats to time (default: all in the folder)")
    args = parser.parse_args()
    with open(os.path.join(args.export_dir, "metadata.json")) as f:
        size = json.load(f)["image_size"]
    names = [n for n in (args.formats or FILES) if os.path.exists(os.path.join(args.export_dir, FILES[n]))]
    print(f"Machine: {machine()}; TFLite and ONNX Runtime threads: {args.threads}")
    print(f"Load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    for name in names:
        try:
            run = make_runner(name, os.path.join(args.export_dir, FILES[name]), args.threads)
        except ImportError as error:
            print(f"{name}: skipped ({error})")
            continue
        cells = []
        for batch in BATCHES:
            pixels = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype(np.float32)
            ms, cpu_ms = median_ms(run, pixels, args.runs if batch == 1 else max(args.runs // 5, 3))
            cells += [f"{ms:.2f}", f"{cpu_ms:.2f}", f"{1000 * batch / ms:.0f}"]
        megabytes = _size(os.path.join(args.export_dir, FILES[name])) / 2**20
        rows.append(f"| {name} | {megabytes:.2f} | {' | '.join(cells)} |")
        print(rows[-1], flush=True)
    print(f"Load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| format | size (MiB) | batch 1: median ms | batch 1: CPU ms | batch 1: images/s "
          "| batch 32: median ms | batch 32: CPU ms | batch 32: images/s |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


def _size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(r, f)) for r, _, files in os.walk(path) for f in files)
    return os.path.getsize(path)


if __name__ == "__main__":
    main()
