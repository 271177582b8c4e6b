"""Times the exact metrics on a large synthetic evaluation set and prints a markdown table row.

Usage: python3 benchmarks/bench_metrics.py [--images 100000] [--classes 1000]
"""

import argparse
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from multi_label.evaluation.metrics import mean_average_precision, multilabel_scores  # noqa: E402


def make_data(num_images, num_classes, seed=0):
    """Float32 scores (as Keras `predict` returns), ~2% positives, ~1% unknown (-1) labels."""
    rng = np.random.default_rng(seed)
    scores = rng.random((num_images, num_classes), dtype=np.float32)
    draw = rng.random((num_images, num_classes), dtype=np.float32)
    targets = (draw < 0.02).astype(np.int8)
    targets[draw > 0.99] = -1
    scores += 0.3 * targets  # some signal, so the metrics are not all chance level
    return targets, scores


def seconds(fn):
    """Wall-clock and CPU seconds of fn(); CPU time is the steadier figure on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return f"{time.perf_counter() - wall:.2f} ({time.process_time() - cpu:.2f} CPU)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=1_000)
    args = parser.parse_args()
    targets, scores = make_data(args.images, args.classes)
    timings = [
        seconds(lambda: mean_average_precision(targets, scores)),
        seconds(lambda: multilabel_scores(targets, scores, threshold=0.5)),
        seconds(lambda: multilabel_scores(targets, scores, top_k=3)),
    ]
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux
    print("| images | classes | mean_average_precision (s) | multilabel_scores, threshold (s) "
          "| multilabel_scores, top-3 (s) | peak RSS (GiB) |")
    print("|---|---|---|---|---|---|")
    print(f"| {args.images} | {args.classes} | {' | '.join(timings)} | {peak_gib:.2f} |")


if __name__ == "__main__":
    main()
