"""Parameters and CPU speed of every head on the same backbone, and ML-Decoder's cost in the classes.

Usage: python3 benchmarks/bench_heads.py [--image-size 224] [--batch 16] [--steps 8] [--warmup 2]
           [--inference-steps 8] [--classes 20] [--width 0.5] [--heads linear ml_decoder ...]
           [--scaling-classes 1000 10000] [--scaling-groups 100]

Part 1, every head of `HEADS` on ResNet-18 at `--width` (default: the configured backbone_width):
the head's parameters and the whole model's, training images/s (`model.fit`, BCE and Adam, as
bench_train.py times it: the median of the timed steps after the warm-up ones) and inference
images/s (`model(x, training=False)` in a tf.function, the median batch). Synthetic data in memory,
so the figures are the model's step alone. The groups head gets two groups of classes / 2.

Part 2, ML-Decoder alone on the feature map the backbone gives at `--image-size`, with
`--scaling-groups` group queries and each of `--scaling-classes`: the parameters of each part
(embedding, decoder, group layer) and the time per batch of a training step and of inference. With
the group count fixed only the group layer grows.

The defaults run in about five minutes on 2 CPU cores; `--image-size 64 --steps 1 --warmup 1
--inference-steps 1 --scaling-classes 100 200` checks the script in a minute.
"""

import argparse
import dataclasses
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from utils.console import prefer_onednn  # noqa: E402

prefer_onednn()  # what run.py uses: oneDNN on every x86 CPU unless TF_ENABLE_ONEDNN_OPTS is set

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_train import StepTimer  # noqa: E402

from configs import Config  # noqa: E402
from multi_label.heads import HEADS  # noqa: E402
from multi_label.heads.ml_decoder import MLDecoderHead  # noqa: E402
from multi_label.losses import LossSettings, build_group_losses, build_loss  # noqa: E402
from multi_label.model import backbone_layers, build_model  # noqa: E402
from multi_label.tasks.settings import loss_settings, model_settings  # noqa: E402


def median_seconds(function, inputs, steps, warmup=2):
    """The median wall-clock seconds of `function(inputs)` over `steps` calls, after `warmup` calls."""
    for _ in range(warmup):
        function(inputs)
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        function(inputs)
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


def head_model(head, args):
    """The project's model with `head` on ResNet-18, and its synthetic labels and loss."""
    config = dataclasses.replace(Config(), backbone="resnet18", backbone_width=args.width, head=head,
                                 image_size=args.image_size)
    rng = np.random.default_rng(0)
    if head == "groups":
        groups = {"a": args.classes // 2, "b": args.classes - args.classes // 2}
        config = dataclasses.replace(config, groups=groups)
        labels = {g: rng.integers(0, k, (args.batch,)) for g, k in groups.items()}  # a class index per group
        model = build_model(model_settings(config), len(groups))
        return model, labels, build_group_losses(loss_settings(config), groups)
    labels = rng.integers(0, 2, (args.batch, args.classes)).astype(np.float32)
    model = build_model(model_settings(config), args.classes, train_labels=labels,
                        class_names=[f"c{i}" for i in range(args.classes)])
    return model, labels, build_loss(loss_settings(config), labels)


def head_parameters(model):
    """Parameters of everything but the backbone (and its input normalisation, which has none)."""
    backbone = {id(layer) for layer in backbone_layers(model)}
    return sum(layer.count_params() for layer in model.layers if id(layer) not in backbone and layer.weights)


def time_head(head, args):
    """{head, head_params, model_params, train_images_per_s, inference_images_per_s} of one head."""
    keras.utils.set_random_seed(0)
    model, labels, loss = head_model(head, args)
    images = np.random.default_rng(1).uniform(0, 255, (args.batch, args.image_size, args.image_size, 3))
    images = images.astype(np.float32)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    timer = StepTimer()
    dataset = tf.data.Dataset.from_tensors((images, labels)).repeat()
    model.fit(dataset, steps_per_epoch=args.warmup + args.steps, epochs=1, callbacks=[timer], shuffle=False, verbose=0)
    train_step = float(np.median(timer.times[args.warmup:]))
    predict = tf.function(lambda x: model(x, training=False))
    inference = median_seconds(lambda x: tf.nest.map_structure(np.asarray, predict(x)), images,
                               args.inference_steps)
    return {"head": head, "head_params": head_parameters(model), "model_params": model.count_params(),
            "train_images_per_s": args.batch / train_step, "inference_images_per_s": args.batch / inference}


def decoder_parts(layer):
    """Parameters of ML-Decoder's parts: embedding, decoder layers (with the fixed queries), group layer."""
    group = layer.kernel.numpy().size + layer.bias.numpy().size
    embedding = layer.embedding.count_params()
    return {"embedding": embedding, "decoder": layer.count_params() - embedding - group, "group layer": group}


def time_ml_decoder(classes, args):
    """Parts and seconds per batch (training step, inference) of ML-Decoder alone on the backbone's feature map."""
    keras.utils.set_random_seed(0)
    side = max(1, args.image_size // 32)
    channels = int(512 * args.width)
    inputs = keras.Input((side, side, channels))
    layer = MLDecoderHead(classes, args.scaling_groups, width=Config().decoder_width, heads=Config().decoder_heads,
                          feedforward=Config().decoder_feedforward, dropout=Config().decoder_dropout, name="ml_decoder")
    model = keras.Model(inputs, layer(inputs))
    rng = np.random.default_rng(2)
    features = rng.normal(size=(args.batch, side, side, channels)).astype(np.float32)
    labels = rng.integers(0, 2, (args.batch, classes)).astype(np.float32)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=build_loss(LossSettings()))
    train = median_seconds(lambda batch: model.train_on_batch(*batch), (features, labels), args.inference_steps)
    predict = tf.function(lambda x: model(x, training=False))
    inference = median_seconds(lambda x: predict(x).numpy(), features, args.inference_steps)
    return {"classes": classes, **decoder_parts(layer), "train_s": train, "inference_s": inference}


def print_tables(rows, scaling, args):
    print(f"\n### Heads on ResNet-18 (width {args.width}), {args.image_size} px, batch {args.batch}, "
          f"{args.classes} classes\n")
    print("| head | head parameters | model parameters | training images/s | inference images/s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['head']}` | {r['head_params']:,} | {r['model_params']:,} | {r['train_images_per_s']:.1f} | "
              f"{r['inference_images_per_s']:.1f} |")
    side = max(1, args.image_size // 32)
    print(f"\n### ML-Decoder alone, {args.scaling_groups} group queries, {side}x{side} feature map of "
          f"{int(512 * args.width)} channels, batch {args.batch}\n")
    print("| classes | embedding | decoder | group layer | training step (ms) | inference (ms) |")
    print("|---|---|---|---|---|---|")
    for r in scaling:
        print(f"| {r['classes']:,} | {r['embedding']:,} | {r['decoder']:,} | {r['group layer']:,} | "
              f"{r['train_s'] * 1000:.1f} | {r['inference_s'] * 1000:.1f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    numbers = {"image-size": 224, "batch": 16, "steps": 8, "warmup": 2, "inference-steps": 8, "classes": 20,
               "scaling-groups": 100}
    for option, default in numbers.items():
        parser.add_argument(f"--{option}", type=int, default=default)
    parser.add_argument("--width", type=float, default=Config().backbone_width)
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS))
    parser.add_argument("--scaling-classes", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = [time_head(head, args) for head in args.heads]
    scaling = [time_ml_decoder(classes, args) for classes in args.scaling_classes]
    load_after = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, TensorFlow "
          f"{tf.__version__}, Keras {keras.__version__}, GPUs {len(tf.config.list_logical_devices('GPU'))}")
    print(f"load average (1/5/15 min) before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print_tables(rows, scaling, args)


if __name__ == "__main__":
    main()
