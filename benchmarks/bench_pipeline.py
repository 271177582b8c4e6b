"""Input pipeline throughput (images/s): decode + resize (+ augment) from image files and from TFRecords.

Usage: python3 benchmarks/bench_pipeline.py [--labels path/to/train.csv] [--images 512]
           [--image-size 224] [--batch 64] [--augment] [--folder /tmp/bench_pipeline]

With `--labels` it reads that label file (e.g. the cards set's train CSV); without, it writes
`--images` 500x375 JPEGs (smooth colour fields with noise, about the size of a photo JPEG of that
resolution) and a label file into `--folder` once. Both sources go through the trainer's own
`input_dataset` (dataset/pipeline.py; dataset/tfrecord.py writes the shards on first use, outside
the timing), with `cache_images=False` so every epoch decodes again. The figure is the second full
pass over the training dataset (the first warms the file cache and traces the functions).
"""

import argparse
import dataclasses
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from utils.console import prefer_onednn  # noqa: E402

prefer_onednn()  # what run.py uses: oneDNN on every x86 CPU unless TF_ENABLE_ONEDNN_OPTS is set

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from configs import Config  # noqa: E402
from dataset.run_splits import load_split  # noqa: E402
from multi_label.tasks.settings import split_settings  # noqa: E402
from multi_label.tasks.train import input_dataset  # noqa: E402
from utils.config import validate  # noqa: E402

CLASSES = ["a", "b", "c", "d", "e"]


def make_images(folder, count, seed=0):
    """Writes `count` 500x375 JPEGs and `labels.csv` into `folder` (kept for later runs)."""
    labels_path = os.path.join(folder, "labels.csv")
    if os.path.isfile(labels_path):
        return labels_path
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:375, 0:500] / 500.0
    rows = ["image," + ",".join(CLASSES)]
    for index in range(count):
        phase = rng.uniform(0, 6.3, 3)
        field = np.stack([np.sin(7 * x + 5 * y + p) for p in phase], -1) * 100 + 128
        pixels = np.clip(field + rng.normal(0, 12, field.shape), 0, 255).astype(np.uint8)
        name = f"images/{index:05d}.jpg"
        tf.io.write_file(os.path.join(folder, name), tf.io.encode_jpeg(pixels, quality=90))
        rows.append(name + "," + ",".join(str(v) for v in rng.integers(0, 2, len(CLASSES))))
    with open(labels_path, "w") as f:
        f.write("\n".join(rows) + "\n")
    return labels_path


def images_per_second(config, table):
    dataset, _ = input_dataset(config, table, training=True)
    for _ in range(2):  # the first pass fills the cache, the second is timed
        start, count = time.perf_counter(), 0
        for images, _ in dataset:
            count += int(images.shape[0])
        seconds = time.perf_counter() - start
    return count / seconds, count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", default="")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--folder", default="/tmp/bench_pipeline")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--augment", action="store_true",
                        help="random resized crop (0.5-1.0), horizontal flip and colour jitter 0.2")
    args = parser.parse_args()
    labels = args.labels or make_images(args.folder, args.images)
    augment = dict(crop_scale=(0.5, 1.0), flip="horizontal", color_jitter=0.2) if args.augment else {}
    base = validate(dataclasses.replace(Config(), train_labels=labels, val_labels="", test_labels="",
                                        image_size=args.image_size, batch_size=args.batch, cache_images=False,
                                        shuffle_buffer=256, **augment))
    table = load_split(split_settings(base), "train_labels")
    load_before = os.getloadavg()
    results = {}
    for data_format in ("files", "tfrecord"):
        # tfrecord_dir only with data_format="tfrecord" (utils/rules/ignored.py refuses it with "files")
        config = validate(dataclasses.replace(base, data_format=data_format, tfrecord_dir=os.path.join(
            args.folder, "tfrecords") if data_format == "tfrecord" else ""))
        if data_format == "tfrecord":
            input_dataset(config, table, training=False)  # writes the shards, outside the timing
        results[data_format] = images_per_second(config, table)
    load_after = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, TensorFlow {tf.__version__}")
    print(f"load average (1/5/15 min) before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    for data_format, (speed, count) in results.items():
        print(f"{data_format}: {speed:.0f} images/s ({count} images of {labels}, resized to {args.image_size}px, "
              f"batch {args.batch}, augment {'on' if args.augment else 'off'})")


if __name__ == "__main__":
    main()
