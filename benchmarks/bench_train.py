"""Training throughput (images/s) and peak memory of the project's model with plain `model.fit`.

Usage: python3 benchmarks/bench_train.py [--backbone resnet18] [--width 1.0] [--image-size 224]
           [--batch 32] [--steps 20] [--warmup 3] [--jit-compile auto|true|false]
           [--precision float32|mixed_float16|mixed_bfloat16] [--classes 20] [--batchnorm fused|keras]
           [--grouped-conv tensorflow|keras]
           [--inference-steps 10]

Synthetic data (random pixels and labels, held in memory), so the figure is the model's training
step alone; the input pipeline has its own benchmark (bench_pipeline.py). The model is
`multi_label.model.build_model` (normalisation, backbone, linear head) with BCE and Adam, compiled
as the trainer does. The timed steps follow `--warmup` steps that trace and compile.

oneDNN is switched by an environment variable read when TensorFlow starts, so compare it with two
runs:
    TF_ENABLE_ONEDNN_OPTS=1 python3 benchmarks/bench_train.py ...
    TF_ENABLE_ONEDNN_OPTS=0 python3 benchmarks/bench_train.py ...
Peak memory: the process's peak resident set on CPU, the allocator's peak on a GPU.
"""

import argparse
import dataclasses
import os
import platform
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from utils.console import prefer_onednn  # noqa: E402

prefer_onednn()  # what run.py uses: oneDNN on every x86 CPU unless TF_ENABLE_ONEDNN_OPTS is set

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from configs import Config  # noqa: E402
from multi_label.losses import build_loss  # noqa: E402
from multi_label.model import build_model  # noqa: E402
from multi_label.tasks.settings import loss_settings, model_settings  # noqa: E402


class StepTimer(keras.callbacks.Callback):
    """Wall-clock time of each training batch (with steps_per_execution 1, each step)."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        float(logs["loss"])  # waits for the step to finish
        self.times.append(time.perf_counter() - self._start)


def model_and_batch(config, precision, classes):
    """The project's model for `config` in `precision` (seeded) and one random batch of images and labels."""
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = build_model(model_settings(config), classes)
    rng = np.random.default_rng(0)
    size = config.image_size
    images = rng.uniform(0, 255, (config.batch_size, size, size, 3)).astype(np.float32)
    labels = rng.integers(0, 2, (config.batch_size, classes)).astype(np.int32)
    return model, images, labels


def benchmark(args):
    jit = {"auto": "auto", "true": True, "false": False}[args.jit_compile]
    if args.batchnorm == "keras":
        from backbone import resnet
        resnet.BATCH_NORM = keras.layers.BatchNormalization
    if args.grouped_conv == "keras":  # Keras's own grouped convolution, which runs through XLA
        from backbone import resnet
        resnet.GroupedConv2D = keras.layers.Conv2D
    config = dataclasses.replace(Config(), backbone=args.backbone, backbone_width=args.width,
                                 image_size=args.image_size, batch_size=args.batch)
    model, images, labels = model_and_batch(config, args.precision, args.classes)
    dataset = tf.data.Dataset.from_tensors((images, labels)).repeat()
    loss = build_loss(loss_settings(config), labels)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, jit_compile=jit)
    timer = StepTimer()
    model.fit(dataset, steps_per_epoch=args.warmup + args.steps, epochs=1, callbacks=[timer], verbose=0)
    times = np.asarray(timer.times[args.warmup:])
    inference = None
    if args.inference_steps:  # predict on the same batch: the inference figure of the same model
        predict = tf.function(lambda x: model(x, training=False), jit_compile=bool(model.jit_compile))
        for _ in range(2):
            predict(images).numpy()
        seconds = []
        for _ in range(args.inference_steps):
            start = time.perf_counter()
            predict(images).numpy()
            seconds.append(time.perf_counter() - start)
        inference = args.batch / float(np.median(seconds))
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        where = "GPU allocator"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        where = "process RSS"
    return {"median_step_s": float(np.median(times)), "images_per_s": args.batch / float(np.median(times)),
            "mean_images_per_s": args.batch * len(times) / float(times.sum()), "peak_mib": peak, "peak_of": where,
            "jit_compile": model.jit_compile, "inference_images_per_s": inference}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--jit-compile", choices=["auto", "true", "false"], default="auto")
    parser.add_argument("--precision", choices=["float32", "mixed_float16", "mixed_bfloat16"], default="float32")
    parser.add_argument("--batchnorm", choices=["fused", "keras"], default="fused",
                        help="the project's fused BatchNormalization (default) or Keras's own, to compare")
    parser.add_argument("--grouped-conv", choices=["tensorflow", "keras"], default="tensorflow",
                        help="ResNeXt's grouped convolutions on TensorFlow's kernel (default) or Keras's XLA path")
    parser.add_argument("--inference-steps", type=int, default=0,
                        help="also time this many inference batches (model(x, training=False)) of the same size")
    args = parser.parse_args()
    load_before = os.getloadavg()
    result = benchmark(args)
    load_after = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, TensorFlow "
          f"{tf.__version__}, Keras {keras.__version__}, GPUs {len(tf.config.list_logical_devices('GPU'))}, "
          f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', '(unset)')}")
    print(f"load average (1/5/15 min) before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(f"{args.backbone} width {args.width} {args.image_size}px batch {args.batch} {args.precision} "
          f"batchnorm={args.batchnorm} grouped_conv={args.grouped_conv} jit_compile={args.jit_compile} "
          f"(resolved {result['jit_compile']}): "
          f"{result['images_per_s']:.1f} images/s (median step {result['median_step_s'] * 1000:.0f} ms; "
          f"mean {result['mean_images_per_s']:.1f} images/s over {args.steps} steps), "
          f"peak memory {result['peak_mib']:.0f} MiB ({result['peak_of']})")
    if result["inference_images_per_s"]:
        print(f"inference: {result['inference_images_per_s']:.1f} images/s (median of {args.inference_steps} batches)")


if __name__ == "__main__":
    main()
