"""Stopping training cleanly on SIGINT or SIGTERM: the backup is written and the resume command printed."""

import shlex
import signal
import sys
import threading

import keras

from multi_label.training.errors import TrainingInterrupted


class StopOnSignal(keras.callbacks.Callback):
    """On SIGINT or SIGTERM, finishes the current step, writes the backup and stops with the resume command.

    The handler only sets a flag, so a signal during validation or a checkpoint write lets that
    write finish; the stop happens at the next step or epoch end. A second signal acts at once
    (the previous handlers are back in place after the first). Goes after the backup callback.

    Args:
        backup: AtomicBackupAndRestore. Writes the resumable state.
    """

    def __init__(self, backup):
        super().__init__()
        self.backup = backup
        self.received = None
        self._previous = {}

    def on_train_begin(self, logs=None):
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, number, frame):
        self.received = number
        self._restore_handlers()
        print(f"\nReceived {signal.Signals(number).name}: saving the backup after this step", flush=True)

    def _restore_handlers(self):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def on_train_batch_end(self, batch, logs=None):
        if self.received is not None:
            self.backup.save()  # a mid-epoch backup (the resumed epoch goes on from the next batch)
            self._stop()

    def on_epoch_end(self, epoch, logs=None):
        if self.received is not None:  # the backup callback before this one has saved the finished epoch
            self._stop()

    def on_train_end(self, logs=None):
        self._restore_handlers()

    def _stop(self):
        name = signal.Signals(self.received).name
        command = shlex.join(["python", *sys.argv]) if sys.argv and sys.argv[0] else "the same command"
        raise TrainingInterrupted(f"training stopped by {name}; the backup is saved in {self.backup.backup_dir}; "
                                  f"resume with: {command}", exit_code=128 + self.received)
