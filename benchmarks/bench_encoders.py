"""Parameters, input size and CPU speed of the pretrained encoders a user can pick, at full size.

Usage: python3 benchmarks/bench_encoders.py [--batch 16] [--steps 4] [--train-steps 3]
           [--encoders resnet18 resnet50 efficientnet_b0 dinov2_small ...]

Each encoder is the network of a published preset, built from the same architecture arguments
with random weights (nothing is downloaded: random weights give the speed, not the accuracy) and
used as `python run.py` uses it: the keras-hub ones are saved as a preset folder here and built
through `backbone="hub:<folder>"`, with the linear head on 20 classes. Inference images/s is the
median batch of `model(x, training=False)` in a tf.function; training images/s the median step of
`model.fit` (BCE, Adam), as bench_train.py times it. Synthetic pixels in memory.

The defaults take about ten minutes on 2 CPU cores; `--encoders resnet18 dinov2_small --steps 1
--train-steps 1` checks the script in two.
"""

import argparse
import dataclasses
import os
import platform
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from utils.console import prefer_onednn  # noqa: E402

prefer_onednn()  # what run.py uses: oneDNN on every x86 CPU unless TF_ENABLE_ONEDNN_OPTS is set

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from bench_heads import median_seconds  # noqa: E402
from bench_train import StepTimer  # noqa: E402

from configs import Config  # noqa: E402
from multi_label.model import build_model  # noqa: E402
from multi_label.tasks.settings import model_settings  # noqa: E402

CLASSES = 20
BASE = dict(num_layers=12, num_heads=12, hidden_dim=768)
# name -> (keras-hub constructor and its arguments, or None for our own ResNets; input side;
#          the preset whose network it is)
ENCODERS = {
    "resnet18": (None, 224, "ours; backbone_weights='torchvision'"),
    "resnet50": (None, 224, "ours; backbone_weights='torchvision'"),
    "efficientnet_b0": (lambda: keras_hub.models.EfficientNetBackbone(
        stackwise_kernel_sizes=[3, 3, 5, 3, 5, 5, 3], stackwise_num_repeats=[1, 2, 2, 3, 3, 4, 1],
        stackwise_input_filters=[32, 16, 24, 40, 80, 112, 192],
        stackwise_output_filters=[16, 24, 40, 80, 112, 192, 320], stackwise_expansion_ratios=[1, 6, 6, 6, 6, 6, 6],
        stackwise_squeeze_and_excite_ratios=[0.25] * 7, stackwise_strides=[1, 2, 2, 2, 1, 2, 1],
        stackwise_block_types=["v1"] * 7, stackwise_width_coefficients=[1.0] * 7,
        stackwise_depth_coefficients=[1.0] * 7), 224, "efficientnet_b0_ra_imagenet"),
    "dinov2_small": (lambda: keras_hub.models.DINOV2Backbone(
        patch_size=14, num_layers=12, hidden_dim=384, num_heads=6, intermediate_dim=1536,
        image_shape=(224, 224, 3), position_embedding_shape=(518, 518, 3)), 224, "dinov2_small"),
    "dinov2_base": (lambda: keras_hub.models.DINOV2Backbone(
        patch_size=14, intermediate_dim=3072, image_shape=(224, 224, 3), position_embedding_shape=(518, 518, 3),
        **BASE), 224, "dinov2_base"),
    "clip_vit_b16": (lambda: keras_hub.models.CLIPVisionEncoder(
        patch_size=16, intermediate_dim=3072, image_shape=(224, 224, 3), **BASE), 224, "clip_vit_base_patch16"),
    "siglip_b16_224": (lambda: keras_hub.models.SigLIPVisionEncoder(
        patch_size=16, intermediate_dim=3072, image_shape=(224, 224, 3), **BASE), 224, "siglip_base_patch16_224"),
    "vit_b16": (lambda: keras_hub.models.ViTBackbone(
        image_shape=(224, 224, 3), patch_size=16, mlp_dim=3072, **BASE), 224, "vit_base_patch16_224_imagenet"),
}


def encoder_model(name, folder):
    """The project's classifier on encoder `name` (random weights) and its input side."""
    make, side, _ = ENCODERS[name]
    backbone = name
    if make is not None:
        preset = os.path.join(folder, name)
        make().save_to_preset(preset)
        keras_hub.layers.ImageConverter(image_size=(side, side), scale=1 / 127.5, offset=-1.0).save_to_preset(preset)
        backbone = f"hub:{preset}"
    config = dataclasses.replace(Config(), backbone=backbone, backbone_width=1.0, image_size=side, pooling="avg")
    return build_model(model_settings(config), CLASSES), side


def measure(name, args, folder):
    model, side = encoder_model(name, folder)
    head = sum(int(np.prod(w.shape)) for layer in model.layers if layer.name.startswith("head") for w in layer.weights)
    x = np.random.RandomState(0).uniform(0, 255, (args.batch, side, side, 3)).astype("float32")
    y = (np.random.RandomState(1).rand(args.batch, CLASSES) > 0.8).astype("float32")
    infer = tf.function(lambda images: model(images, training=False))
    inference = args.batch / median_seconds(infer, tf.constant(x), args.steps, warmup=1)
    model.compile(keras.optimizers.Adam(1e-4), keras.losses.BinaryCrossentropy(from_logits=True))
    timer = StepTimer()
    data = tf.data.Dataset.from_tensors((x, y)).repeat(args.train_steps + 1)
    model.fit(data, epochs=1, verbose=0, callbacks=[timer])
    training = args.batch / float(np.median(timer.times[1:]))  # the first step traces and compiles
    return {"params": model.count_params() - head, "side": side, "inference": inference, "training": training}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="timed inference batches (after one warm-up)")
    parser.add_argument("--train-steps", type=int, default=3, help="timed training steps (after one warm-up)")
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, TensorFlow {tf.__version__}, "
          f"Keras {keras.__version__}, keras-hub {keras_hub.__version__}; batch {args.batch}, float32")
    print("| encoder | network of | parameters (M) | input px | inference images/s | training images/s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.encoders:
            row = measure(name, args, folder)
            print(f"| {name} | {ENCODERS[name][2]} | {row['params'] / 1e6:.1f} | {row['side']} | "
                  f"{row['inference']:.1f} | {row['training']:.1f} |", flush=True)
            keras.backend.clear_session()


if __name__ == "__main__":
    main()
