"""The one command: `python run.py [config=file.py] [key=value ...]` does the job named by `mode`.

Settings and their meaning are in configs.py; each mode's work is one module in multi_label/tasks/.
`python run.py --help` lists the modes; `python run.py help=<setting>` explains one setting.
"""

import importlib
import sys
from typing import NamedTuple

from utils.config import ConfigError, load_config
from utils.console import line_buffered_output, start_tensorflow
from utils.help import help_topic, overview, topic_help


class Mode(NamedTuple):
    """One mode: the task that does it (module, function) and what `--help` says of it."""

    module: str
    function: str
    summary: str
    example: str


# mode -> Mode. Imported on use: help and a config error stop before TensorFlow loads.
MODES = {
    "train": Mode("multi_label.tasks.train", "run_train",
                  "trains, keeps the best model by validation mAP, resumes after a crash; then tests",
                  "python run.py train_labels=data/train.csv val_labels=data/val.csv test_labels=data/test.csv "
                  "run_name=mine"),
    "test": Mode("multi_label.tasks.test", "run_test",
                 "evaluates a checkpoint on test_labels: mAP, CF1, OF1, the weakest classes, a report",
                 "python run.py mode=test run_name=mine test_labels=data/test.csv"),
    "predict": Mode("multi_label.tasks.predict", "run_predict",
                    "labels an image, a folder or a label file; prints the labels and writes a CSV or JSON",
                    "python run.py mode=predict run_name=mine input=photo.jpg"),
    "check": Mode("multi_label.tasks.check_labels", "run_check",
                  "reads every image of the label files, lists broken rows, writes cleaned copies",
                  "python run.py mode=check train_labels=data/train.csv val_labels=data/val.csv "
                  "test_labels=data/test.csv"),
    "import": Mode("multi_label.tasks.import_labels", "run_import",
                   "converts COCO, Pascal VOC, names-CSV or text annotations to the canonical CSV",
                   "python run.py mode=import import_format=voc import_source=VOC2012 import_output=data/train.csv"),
    "stats": Mode("multi_label.tasks.label_stats", "run_stats",
                  "label counts, labels per image and co-occurrence of the label files (PNG and JSON)",
                  "python run.py mode=stats train_labels=data/train.csv val_labels='' test_labels=''"),
    "debug": Mode("multi_label.tasks.debug", "run_debug",
                  "per-layer output and gradient statistics of one batch: dead or exploding layers",
                  "python run.py mode=debug checkpoint=models/demo/last.keras"),
    "convert": Mode("multi_label.tasks.convert", "run_convert",
                    "exports to SavedModel, TFLite and ONNX, each checked against the Keras model",
                    "python run.py mode=convert run_name=mine test_labels=data/test.csv formats=\"('keras', "
                    "'tflite_float16')\""),
    "prune": Mode("multi_label.tasks.prune", "run_prune",
                  "network slimming: removes the channels of smallest BatchNorm gamma into a thinner model, with "
                  "parameters, MACs, CPU time and test mAP before and after",
                  "python run.py mode=prune run_name=mine prune_ratio=0.5"),
    "find_label_errors": Mode("multi_label.tasks.find_label_errors", "run_find_label_errors",
                              "K-fold out-of-fold predictions ranked by cleanlab: suspect labels of train_labels and "
                              "val_labels (CSV, image grid) and a corrected copy of each label file",
                              "python run.py mode=find_label_errors run_name=mine train_labels=data/train.csv "
                              "val_labels=data/val.csv label_error_folds=5"),
}
# Modes that build or load a model: a keras-hub preset's input size applies to them.
BUILDS_MODELS = {"train", "test", "predict", "debug", "convert", "find_label_errors"}
# Modes that read the train/val/test label files; the demo data is built for them when missing.
READS_SPLITS = {"train", "test", "check", "stats", "debug", "convert", "prune", "find_label_errors"}


def main(args):
    """Answers help, or parses the settings, seeds once, builds missing demo data and runs the mode.

    Returns the exit status.
    """
    topic = help_topic(args)
    if topic is not None:
        print(topic_help(topic, MODES) if topic else overview(MODES))
        return 0
    config = load_config(args)
    line_buffered_output()
    print(f"mode={config.mode} run_name={config.run_name}")
    start_tensorflow()
    import keras

    from dataset.demo import ensure_demo_data

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    if config.mode in READS_SPLITS:
        ensure_demo_data([config.train_labels, config.val_labels, config.test_labels], config.demo_data_dir,
                         config.demo_images, config.seed, groups=bool(config.groups), long_tail=config.demo_long_tail)
    if config.mode in BUILDS_MODELS:
        from multi_label.tasks.preset_input import with_preset_input
        config = with_preset_input(config)
    mode = MODES[config.mode]
    return getattr(importlib.import_module(mode.module), mode.function)(config) or 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except Exception as error:
        from dataset.labels import LabelFileError
        from multi_label.training.errors import TrainingError

        if isinstance(error, (LabelFileError, TrainingError)):
            print(f"error: {error}", file=sys.stderr)
            sys.exit(getattr(error, "exit_code", 1))  # 128 + signal number after SIGINT/SIGTERM
        raise
