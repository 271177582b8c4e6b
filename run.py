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

    from multi_label.data import ensure_demo_data
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        import tensorflow as tf
        tf.config.experimental.enable_op_determinism()
    ensure_demo_data(config)
    if config.mode == "train":
        from multi_label.trainer import train
        best = train(config)
        if config.test_labels:
            from multi_label.tester import run_test
            config.checkpoint = config.checkpoint or best
            run_test(config)
    elif config.mode == "test":
        from multi_label.tester import run_test
        run_test(config)
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
        from multi_label.callbacks import TrainingError
        if isinstance(error, (LabelFileError, TrainingError)):
            print(f"error: {error}", file=sys.stderr)
            sys.exit(1)
        raise
