"""One run, one table: the project's ResNet-18 training step against the same network in PyTorch.

Usage: python3 benchmarks/bench_vs_torch.py [--image-size 224] [--width 1.0] [--batch 32] [--classes 20]
           [--steps 12] [--warmup 2] [--float32-only]

The demo's size: --image-size 64 --width 0.5 --batch 64 --classes 10.

Runs, one after the other in fresh processes (so that none shares threads or memory with another):
bench_train.py with the fused BatchNormalization (the default), with Keras's own BatchNormalization,
and in mixed_bfloat16; bench_train_torch.py in channels-last and in torch's default NCHW layout, and
channels-last under bfloat16 autocast. Prints a markdown table and two ratios: the project's float32
figure to the faster PyTorch float32 one, and its mixed_bfloat16 figure to PyTorch's bfloat16
autocast. On a machine without torch the PyTorch rows say so. Run it on an otherwise idle machine:
two processes on two cores halve each other's figures. The first line names the CPU's instruction
sets and the oneDNN setting, since both libraries pick their kernels by them; on a CPU with
AVX-512, `ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python3 benchmarks/bench_vs_torch.py ...`
makes both pick their AVX2 kernels (the line then says so).
"""

import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from utils.console import ONEDNN_VARIABLE, prefer_onednn  # noqa: E402
from utils.cpu import cpu_model, isa_summary  # noqa: E402

prefer_onednn()  # what run.py uses, passed on to bench_train.py
# Variables that cap the instruction set each library uses (to measure AVX2 kernels on an AVX-512 CPU).
ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
RATE = re.compile(r"([\d.]+) images/s \(median step")
INFERENCE = re.compile(r"inference: ([\d.]+) images/s")


def measure(script, *flags, timeout=None):
    """Runs one benchmark script; returns (training images/s or None, inference images/s or None, its output).

    `timeout` (seconds, None: none) raises subprocess.TimeoutExpired when the script runs longer.
    """
    result = subprocess.run([sys.executable, os.path.join(HERE, script), *flags], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=timeout)
    output = result.stdout.strip()
    rate, inference = RATE.search(output), INFERENCE.search(output)
    return (float(rate.group(1)) if rate else None, float(inference.group(1)) if inference else None,
            output or result.stderr.strip()[-500:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--float32-only", action="store_true",
                        help="leave out the bfloat16 rows (on a CPU without AVX512_BF16 or AMX bfloat16 is emulated: "
                             "minutes a step at 224 px, and no user would train in it there)")
    args = parser.parse_args()
    common = ["--image-size", str(args.image_size), "--width", str(args.width), "--batch", str(args.batch),
              "--classes", str(args.classes), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    runs = [
        ("Keras, this project (fused BatchNorm), float32", "bench_train.py", common + ["--inference-steps", "10"]),
        ("Keras, Keras's own BatchNorm, float32", "bench_train.py",
         common + ["--batchnorm", "keras", "--inference-steps", "10"]),
        ("Keras, this project, mixed_bfloat16", "bench_train.py",
         common + ["--precision", "mixed_bfloat16", "--inference-steps", "10"]),
        ("PyTorch, channels-last, float32", "bench_train_torch.py", common + ["--memory-format", "channels_last"]),
        ("PyTorch, NCHW (torch's default layout), float32", "bench_train_torch.py",
         common + ["--memory-format", "contiguous"]),
        ("PyTorch, channels-last, bfloat16 autocast", "bench_train_torch.py",
         common + ["--memory-format", "channels_last", "--autocast", "bfloat16"]),
    ]
    caps = ", ".join(f"{name}={os.environ[name]}" for name in ISA_CAPS if name in os.environ) or "none"
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores, {isa_summary()}; "
          f"{ONEDNN_VARIABLE}={os.environ.get(ONEDNN_VARIABLE, 'unset')}; instruction-set caps: {caps}")
    if args.float32_only:
        runs = [run for run in runs if "bfloat16" not in run[0]]
    print(f"ResNet-18 width {args.width}, {args.image_size}x{args.image_size}, batch {args.batch}, "
          f"{args.classes} classes, synthetic data, "
          f"{args.warmup} warm-up + {args.steps} timed steps, median step; load average before: "
          f"{os.getloadavg()[0]:.2f}\n")
    print("| run | training images/s | inference images/s |\n|---|---|---|")
    rates = {}
    for name, script, flags in runs:
        rate, inference, output = measure(script, *flags)
        rates[name] = rate
        shown = f"{rate:.1f}" if rate else f"not measured ({output.splitlines()[-1] if output else 'no output'})"
        print(f"| {name} | {shown} | {f'{inference:.1f}' if inference else ''} |", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    ours = rates["Keras, this project (fused BatchNorm), float32"]
    torch_float32 = [rate for name, rate in rates.items() if name.startswith("PyTorch") and "float32" in name and rate]
    if ours and torch_float32:
        print(f"float32 training, this project / the faster PyTorch layout: {ours / max(torch_float32):.2f}x")
    ours_bf16 = rates.get("Keras, this project, mixed_bfloat16")
    torch_bf16 = rates.get("PyTorch, channels-last, bfloat16 autocast")
    if ours_bf16 and torch_bf16:
        print(f"bfloat16 training, this project (mixed_bfloat16) / PyTorch (autocast): {ours_bf16 / torch_bf16:.2f}x")


if __name__ == "__main__":
    main()
