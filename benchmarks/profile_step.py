"""Where the time of a training step goes: TensorFlow's profiler, op by op, on the default demo model.

Usage: python3 benchmarks/profile_step.py [--image-size 64] [--width 0.5] [--batch 64] [--classes 10]
           [--steps 30] [--precision float32|mixed_bfloat16] [--optimizer adam]

The model, loss and optimizer are the defaults of configs.py (what `python run.py` trains: ResNet-18
at half width, 64 px, batch 64, BCE, Adam with the cosine schedule), built and compiled as the
trainer does, on one in-memory batch so that the step alone is measured. Prints:
- the median step time with `model.fit`, the forward pass alone (training mode), and the step
  run as a bare `tf.function` without Keras's fit loop (what the loop and callbacks cost);
- the profiler's self time per operation type over `--steps` steps, grouped (convolutions forward
  and backward, BatchNorm, element-wise, pooling, the optimizer's updates, the rest), as a markdown
  table. Self times are summed over the threads that ran them, so with two cores busy they add up
  to about twice the step's wall time; the shares are what compares.
Run it on an otherwise idle machine.
"""

import argparse
import collections
import dataclasses
import glob
import json
import os
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from utils.console import prefer_onednn  # noqa: E402

prefer_onednn()  # what run.py uses: oneDNN on every x86 CPU unless TF_ENABLE_ONEDNN_OPTS is set

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_train import StepTimer, model_and_batch  # noqa: E402
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as profiler_tools  # noqa: E402

from configs import Config  # noqa: E402
from multi_label.losses import build_loss  # noqa: E402
from multi_label.optim.optimizers import build_optimizer  # noqa: E402
from multi_label.tasks.settings import loss_settings, optimizer_settings  # noqa: E402

# Operation type -> group; the first matching prefix wins, anything else is "other".
GROUPS = [
    ("Conv2DBackprop", "convolutions, backward"), ("DepthwiseConv2dNativeBackprop", "convolutions, backward"),
    ("_FusedConv2D", "convolutions, forward"), ("Conv2D", "convolutions, forward"),
    ("FusedBatchNorm", "BatchNorm (fused kernels)"),
    ("MaxPool", "pooling"), ("AvgPool", "pooling"), ("Max", "pooling"),
    ("ResourceApply", "optimizer updates"), ("AssignVariable", "optimizer updates"),
    ("AssignAddVariable", "optimizer updates"), ("AssignSubVariable", "optimizer updates"),
    ("ReadVariable", "variable reads"),
    ("Relu", "element-wise"), ("AddV2", "element-wise"), ("AddN", "element-wise"), ("Mul", "element-wise"),
    ("Sub", "element-wise"), ("RealDiv", "element-wise"), ("Sqrt", "element-wise"), ("Square", "element-wise"),
    ("Cast", "element-wise"), ("Select", "element-wise"), ("Sigmoid", "element-wise"), ("Exp", "element-wise"),
    ("Log", "element-wise"), ("Neg", "element-wise"), ("Maximum", "element-wise"), ("Minimum", "element-wise"),
    ("Pow", "element-wise"), ("Less", "element-wise"), ("Greater", "element-wise"), ("Equal", "element-wise"),
    ("Sum", "reductions"), ("Mean", "reductions"), ("Prod", "reductions"),
    ("MatMul", "dense layer"), ("BiasAdd", "dense layer"),
    ("IteratorGetNext", "input (in-memory batch)"),
]


def group_of(op_type):
    """The group of an operation type; oneDNN's kernels (`_MklNative...`, `_Mkl...`) count as the op they run."""
    op_type = op_type.removeprefix("_MklNative").removeprefix("_Mkl")
    for prefix, group in GROUPS:
        if op_type.startswith(prefix):
            return group
    return "other"


def build(args):
    config = dataclasses.replace(Config(), image_size=args.image_size, backbone_width=args.width,
                                 batch_size=args.batch, optimizer=args.optimizer)
    model, images, labels = model_and_batch(config, args.precision, args.classes)
    steps_per_epoch = 21000 // args.batch  # the demo's 21,000 training images
    model.compile(optimizer=build_optimizer(optimizer_settings(config), steps_per_epoch, args.batch),
                  loss=build_loss(loss_settings(config), labels), jit_compile=config.jit_compile)
    return model, images, labels


def median_seconds(function, repeats):
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def op_table(model, dataset, steps):
    """{operation type: self time in us} over `steps` fit steps, from TensorFlow's profiler."""
    folder = tempfile.mkdtemp(prefix="profile_step_")
    tf.profiler.experimental.start(folder)
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    tf.profiler.experimental.stop()
    trace = glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True)[0]
    data, ok = profiler_tools.xspace_to_tools_data([trace], "framework_op_stats", {})
    if not ok:
        raise RuntimeError(f"the profiler's op statistics could not be read from {trace}")
    table = json.loads(data)[0]
    columns = [c["id"] for c in table["cols"]]
    times = collections.Counter()
    for row in table["rows"]:
        cells = dict(zip(columns, (c["v"] if c else None for c in row["c"])))
        if cells["host_or_device"] == "Host" and cells["type"] != "IDLE":  # IDLE: threads waiting
            times[cells["type"]] += cells["total_self_time"]
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--precision", choices=["float32", "mixed_bfloat16"], default="float32")
    parser.add_argument("--optimizer", default="adam")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    model, images, labels = build(args)
    dataset = tf.data.Dataset.from_tensors((images, labels)).repeat()
    timer = StepTimer()
    model.fit(dataset, steps_per_epoch=5 + args.steps, epochs=1, callbacks=[timer], verbose=0)
    fit_step = float(np.median(timer.times[5:]))
    forward = tf.function(lambda x: model(x, training=True))
    forward(images)
    forward_s = median_seconds(lambda: forward(images).numpy(), args.steps)
    iterator = iter(dataset)
    model.train_function(iterator)  # the compiled step Keras's loop calls, without the loop and callbacks
    bare_s = median_seconds(lambda: float(model.train_function(iterator)["loss"]), args.steps)
    times = op_table(model, dataset, args.steps)
    total = sum(times.values())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}; load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"resnet18 width {args.width}, {args.image_size} px, batch {args.batch}, {args.precision}, "
          f"{args.optimizer}: fit step {fit_step * 1000:.1f} ms ({args.batch / fit_step:.0f} images/s), bare "
          f"train_function {bare_s * 1000:.1f} ms, forward (training mode) {forward_s * 1000:.1f} ms")
    print(f"\nprofiler, self time over {args.steps} steps: {total / 1000 / args.steps:.1f} ms of operations per step, "
          "summed over the threads that ran them\n")
    groups = collections.Counter()
    for op_type, us in times.items():
        groups[group_of(op_type)] += us
    print("| group | ms per step | share |\n|---|---|---|")
    for group, us in groups.most_common():
        print(f"| {group} | {us / 1000 / args.steps:.1f} | {100 * us / total:.1f} % |")
    print("\n| operation type | ms per step | share |\n|---|---|---|")
    for op_type, us in times.most_common(15):
        print(f"| {op_type} | {us / 1000 / args.steps:.2f} | {100 * us / total:.1f} % |")


if __name__ == "__main__":
    main()
