"""Labels image files with an exported TFLite model: the TFLite interpreter, NumPy and Pillow only.

Usage:
    python examples/run_tflite.py models/demo/export/model_int8.tflite photo.jpg [more.png ...]

Works with every `.tflite` file written by `python run.py mode=convert`. The class names, the
per-class thresholds and the image size come from `metadata.json` beside the model. Images are
resized here the way training resized them (bilinear, antialiased when shrinking: Pillow's
resize of float pixels gives the same values as the training pipeline to about 1e-4). The
interpreter is `ai_edge_litert` (`pip install ai-edge-litert`) when installed, else
TensorFlow's `tf.lite.Interpreter`.
"""

import argparse
import json
import os
import warnings

import numpy as np
from PIL import Image


def load_interpreter(path, threads):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():  # tf.lite.Interpreter warns that it moves to ai_edge_litert
        warnings.simplefilter("ignore")
        return Interpreter(model_path=path, num_threads=threads)


def read_pixels(path, size):
    """float32 [size, size, 3] pixels in [0, 255], resized per channel without rounding to integers."""
    image = np.asarray(Image.open(path).convert("RGB"), np.float32)
    channels = [Image.fromarray(np.ascontiguousarray(image[..., c])).resize((size, size), Image.BILINEAR)
                for c in range(3)]
    return np.stack([np.asarray(c) for c in channels], axis=-1)


def classify(interpreter, pixels):
    """Probabilities [C] of one image; integer inputs are quantised with the model's scale and zero point."""
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    batch = pixels[None]
    if np.issubdtype(source["dtype"], np.integer):
        scale, zero_point = source["quantization"]
        limits = np.iinfo(source["dtype"])
        batch = np.clip(np.round(batch / scale + zero_point), limits.min, limits.max)
    interpreter.set_tensor(source["index"], batch.astype(source["dtype"]))
    interpreter.invoke()
    output = interpreter.get_tensor(target["index"])[0]
    if np.issubdtype(output.dtype, np.integer):
        scale, zero_point = target["quantization"]
        output = (output.astype(np.float32) - zero_point) * scale
    return output


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a .tflite file of the export folder")
    parser.add_argument("images", nargs="+", help="image files (anything Pillow opens)")
    parser.add_argument("--metadata", default=None, help="metadata.json of the export (default: beside the model)")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: the runtime's)")
    parser.add_argument("--top", type=int, default=5, help="probabilities to print per image (highest first)")
    args = parser.parse_args()

    metadata_path = args.metadata or os.path.join(os.path.dirname(os.path.abspath(args.model)), "metadata.json")
    with open(metadata_path, encoding="utf-8") as f:
        metadata = json.load(f)
    class_names, thresholds = metadata["class_names"], np.asarray(metadata["thresholds"])
    interpreter = load_interpreter(args.model, args.threads)
    interpreter.allocate_tensors()
    for path in args.images:
        probabilities = classify(interpreter, read_pixels(path, metadata["image_size"]))
        labels = [name for name, p, t in zip(class_names, probabilities, thresholds) if p >= t]
        print(f"{path}: {', '.join(labels) if labels else '(no label above its threshold)'}")
        for index in probabilities.argsort()[::-1][:args.top]:
            print(f"  {class_names[index]:<20} {probabilities[index]:.4f}  (threshold {thresholds[index]:.3f})")


if __name__ == "__main__":
    main()
