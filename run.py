"""The one command: `python run.py [config=file.py] [key=value ...]` does the job named by `mode`.

Settings and their meaning are in configs.py; each mode's work is one module in multi_label/tasks/.
"""

import importlib
import os
import sys

# Keep TensorFlow's start-up chatter (CUDA probes, CPU feature notes) out of the user's way;
# errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from utils.config import ConfigError, load_config  # noqa: E402  (after the environment is set)

# mode -> (task module, function). Imported on use: a config error stops before TensorFlow loads.
MODES = {
    "train": ("multi_label.tasks.train", "run_train"),
    "test": ("multi_label.tasks.test", "run_test"),
    "predict": ("multi_label.tasks.predict", "run_predict"),
    "check": ("multi_label.tasks.data", "run_check"),
    "import": ("multi_label.tasks.data", "run_import"),
    "stats": ("multi_label.tasks.data", "run_stats"),
    "debug": ("multi_label.tasks.debug", "run_debug"),
    "convert": ("multi_label.tasks.convert", "run_convert"),
}
# Modes that read the train/val/test label files; the demo data is built for them when missing.
READS_SPLITS = {"train", "test", "check", "stats", "debug", "convert"}


def main(args):
    """Parses the settings, seeds once, builds missing demo data and runs the mode; returns the exit status."""
    config = load_config(args)
    print(f"mode={config.mode} run_name={config.run_name}")
    import keras

    from dataset.demo import ensure_demo_data

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    if config.mode in READS_SPLITS:
        ensure_demo_data([config.train_labels, config.val_labels, config.test_labels], config.demo_data_dir,
                         config.demo_images, config.seed, groups=bool(config.groups))
    module, function = MODES[config.mode]
    return getattr(importlib.import_module(module), function)(config) or 0


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
