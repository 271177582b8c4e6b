"""The errors that stop training with a one-line message, and the guard that turns a failed write into one."""

import contextlib


class TrainingError(RuntimeError):
    """Training cannot go on; the message says where and what to try."""


class TrainingInterrupted(TrainingError):
    """SIGINT or SIGTERM stopped training after saving the backup; `exit_code` is 128 + the signal number."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


@contextlib.contextmanager
def checkpoint_write(path):
    """Turns a failed checkpoint write (full disk, lost mount, no permission) into a one-line TrainingError.

    Every checkpoint file is written to a temporary file and renamed, so the previous one is intact.
    """
    try:
        yield
    except OSError as error:
        reason = error.strerror or str(error) or type(error).__name__
        raise TrainingError(f"cannot write {path}: {reason}; the last good checkpoint and backup are kept. Free disk "
                            "space (or fix the folder) and run the same command to resume") from None
