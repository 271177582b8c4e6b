"""Times one basic block (conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN) at several inner widths, in turns.

    python benchmarks/bench_block_width.py --precision float32

Network slimming thins a block's inner width; this says how much of a block's time that buys on
this machine at a given size, where a fixed cost per layer can outweigh the arithmetic. The
blocks take turns call by call (so they share the machine's drift), 40 calls each after 3
warm-ups; prints the median milliseconds per call of `predict_on_batch` for each inner width.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from utils.console import prefer_onednn  # noqa: E402

prefer_onednn()  # what run.py uses: oneDNN on every x86 CPU unless TF_ENABLE_ONEDNN_OPTS is set

import keras  # noqa: E402
import numpy as np  # noqa: E402


def block(inner, side, width):
    inputs = keras.Input((side, side, width))
    x = keras.layers.Conv2D(inner, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(x))
    x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
    return keras.Model(inputs, keras.layers.BatchNormalization()(x))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=["float32", "mixed_bfloat16"], default="float32")
    parser.add_argument("--side", type=int, default=8, help="positions per side (8: stage 3 of ResNet-18 at 64 px)")
    parser.add_argument("--width", type=int, default=128, help="the block's outer width")
    parser.add_argument("--inner", type=int, nargs="+", default=[128, 112, 109, 96, 71, 64, 48])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    keras.mixed_precision.set_global_policy(args.precision)
    images = np.random.default_rng(0).random((args.batch, args.side, args.side, args.width), np.float32)
    blocks = {inner: block(inner, args.side, args.width) for inner in args.inner}
    for model in blocks.values():
        for _ in range(3):
            model.predict_on_batch(images)
    spent = {inner: [] for inner in blocks}
    for _ in range(args.calls):
        for inner, model in blocks.items():
            start = time.perf_counter()
            model.predict_on_batch(images)
            spent[inner].append(time.perf_counter() - start)
    print(f"{args.precision}, batch {args.batch}, {args.side}x{args.side} positions, outer width {args.width}")
    print("| inner width | MACs (M) | median ms per call |")
    print("|---|---|---|")
    for inner, times in spent.items():
        macs = args.batch * args.side ** 2 * 9 * inner * 2 * args.width / 1e6
        print(f"| {inner} | {macs:.0f} | {1000 * statistics.median(times):.2f} |")


if __name__ == "__main__":
    main()
