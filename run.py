"""The one command: `python run.py [config=file.py] [key=value ...]` does the job named by `mode`.

Settings and their meaning are in configs.py.
"""

import os
import sys

# Keep TensorFlow's start-up chatter (CUDA probes, CPU feature notes) out of the user's way;
# errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from utils.config import ConfigError, load_config  # noqa: E402  (after the environment is set)


def main(args):
    config = load_config(args)
    print(f"mode={config.mode} run_name={config.run_name}")
    import keras

    from dataset.splits import ensure_demo_data
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        import tensorflow as tf
        tf.config.experimental.enable_op_determinism()
    if config.mode not in ("import", "predict"):  # the modes that read train/val/test label files
        ensure_demo_data(config)
    if config.mode == "train":
        from multi_label.tasks.train import train
        best = train(config)
        if config.test_labels and best is not None:  # None: a non-chief worker, which writes no reports
            from multi_label.tasks.test import run_test
            config.checkpoint = config.checkpoint or best
            run_test(config)
    elif config.mode == "test":
        from multi_label.tasks.test import run_test
        run_test(config)
    elif config.mode == "check":
        from multi_label.tasks.data import run_check
        if run_check(config):
            sys.exit(1)  # faulty rows: a script can stop before training on them
    elif config.mode == "import":
        from multi_label.tasks.data import run_import
        run_import(config)
    elif config.mode == "stats":
        from multi_label.tasks.data import run_stats
        run_stats(config)
    elif config.mode == "predict":
        from multi_label.tasks.predict import run_predict
        run_predict(config)
    elif config.mode == "debug":
        from multi_label.tasks.debug import run_debug
        run_debug(config)
    elif config.mode == "convert":
        from multi_label.export.formats import run_convert
        run_convert(config)
    else:
        raise ConfigError(f"mode={config.mode!r} is not handled by run.py")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except Exception as error:
        from dataset.labels import LabelFileError
        from multi_label.training.callbacks import TrainingError
        if isinstance(error, (LabelFileError, TrainingError)):
            print(f"error: {error}", file=sys.stderr)
            sys.exit(getattr(error, "exit_code", 1))  # 128 + signal number after SIGINT/SIGTERM
        raise
