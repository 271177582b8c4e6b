"""Labels image files with an exported SavedModel: TensorFlow only, no code from this project.

Usage:
    python examples/serve_savedmodel.py models/demo/export/savedmodel photo.jpg [more.png ...]

The SavedModel (written by `python run.py mode=convert`) decodes, resizes and thresholds inside:
its `serve_image_bytes` signature takes the file bytes and returns `probabilities` [N, C] and
`labels` [N, C] (the class name where the class is present, "" elsewhere). `metadata` returns
the class names and the per-class thresholds. The default signature (`serving_default`) takes
uint8 pixels [N, H, W, 3] of any size instead, as TF Serving would send them.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("savedmodel", help="the export's savedmodel/ folder")
    parser.add_argument("images", nargs="+", help="JPEG, PNG, BMP or GIF files")
    parser.add_argument("--top", type=int, default=5, help="probabilities to print per image (highest first)")
    args = parser.parse_args()

    model = tf.saved_model.load(args.savedmodel)
    metadata = model.signatures["metadata"]()
    class_names = [name.decode() for name in metadata["class_names"].numpy()]
    thresholds = metadata["thresholds"].numpy()
    classify = model.signatures["serve_image_bytes"]
    for path in args.images:
        with open(path, "rb") as f:
            out = classify(image_bytes=tf.constant([f.read()]))
        probabilities = out["probabilities"].numpy()[0]
        labels = [name.decode() for name in out["labels"].numpy()[0] if name]
        print(f"{path}: {', '.join(labels) if labels else '(no label above its threshold)'}")
        for index in probabilities.argsort()[::-1][:args.top]:
            print(f"  {class_names[index]:<20} {probabilities[index]:.4f}  (threshold {thresholds[index]:.3f})")


if __name__ == "__main__":
    main()
