"""One run, one table: the project's ResNet-18 training step against the same network in PyTorch.

Usage: python3 benchmarks/bench_vs_torch.py [--image-size 224] [--batch 32] [--steps 12] [--warmup 2]

Runs, one after the other in fresh processes (so that none shares threads or memory with another):
bench_train.py with the fused BatchNormalization (the default), with Keras's own BatchNormalization,
and in mixed_bfloat16; bench_train_torch.py in channels-last and in torch's default NCHW layout.
Prints a markdown table and the ratio of the project's default float32 figure to the faster PyTorch
one. On a machine without torch the PyTorch rows say so. Run it on an otherwise idle machine: two
processes on two cores halve each other's figures.
"""

import argparse
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RATE = re.compile(r"([\d.]+) images/s \(median step")
INFERENCE = re.compile(r"inference: ([\d.]+) images/s")


def measure(script, *flags):
    """Runs one benchmark script; returns (training images/s or None, inference images/s or None, its output)."""
    result = subprocess.run([sys.executable, os.path.join(HERE, script), *flags], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    output = result.stdout.strip()
    rate, inference = RATE.search(output), INFERENCE.search(output)
    return (float(rate.group(1)) if rate else None, float(inference.group(1)) if inference else None,
            output or result.stderr.strip()[-500:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    common = ["--image-size", str(args.image_size), "--batch", str(args.batch), "--steps", str(args.steps),
              "--warmup", str(args.warmup)]
    runs = [
        ("Keras, this project (fused BatchNorm), float32", "bench_train.py", common + ["--inference-steps", "10"]),
        ("Keras, Keras's own BatchNorm, float32", "bench_train.py",
         common + ["--batchnorm", "keras", "--inference-steps", "10"]),
        ("Keras, this project, mixed_bfloat16", "bench_train.py",
         common + ["--precision", "mixed_bfloat16", "--inference-steps", "10"]),
        ("PyTorch, channels-last, float32", "bench_train_torch.py", common + ["--memory-format", "channels_last"]),
        ("PyTorch, NCHW (torch's default layout), float32", "bench_train_torch.py",
         common + ["--memory-format", "contiguous"]),
    ]
    print(f"ResNet-18, {args.image_size}x{args.image_size}, batch {args.batch}, synthetic data, "
          f"{args.warmup} warm-up + {args.steps} timed steps, median step; load average before: "
          f"{os.getloadavg()[0]:.2f}\n")
    print("| run | training images/s | inference images/s |\n|---|---|---|")
    rates = {}
    for name, script, flags in runs:
        rate, inference, output = measure(script, *flags)
        rates[name] = rate
        shown = f"{rate:.1f}" if rate else f"not measured ({output.splitlines()[-1] if output else 'no output'})"
        print(f"| {name} | {shown} | {f'{inference:.1f}' if inference else ''} |", flush=True)
    ours = rates[runs[0][0]]
    torch_rates = [rates[name] for name, script, _ in runs if script == "bench_train_torch.py" and rates[name]]
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    if ours and torch_rates:
        print(f"float32 training, this project / the faster PyTorch layout: {ours / max(torch_rates):.2f}x")


if __name__ == "__main__":
    main()
