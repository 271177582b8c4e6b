"""A learning-rate schedule that restarts for a second training stage (the balanced stage)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="multi_label")
class BalancedStage(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule` before step `stage_start`, then `stage` from its own step 0: a restart for a second stage.

    The balanced stage (Kang et al., ICLR 2020) re-trains the classifier with a fresh cosine
    schedule; the main schedule has decayed to `min_lr` by then.

    Args:
        schedule: LearningRateSchedule. The rate of the first `stage_start` steps.
        stage_start: int. The stage's first step (epochs x steps per epoch).
        stage: LearningRateSchedule. The stage's rate, of the steps since `stage_start`.
        name: str or None. Name of the schedule.
    """

    def __init__(self, schedule, stage_start, stage, name=None):
        if isinstance(schedule, dict):  # from a saved config
            schedule = keras.saving.deserialize_keras_object(schedule)
        if isinstance(stage, dict):
            stage = keras.saving.deserialize_keras_object(stage)
        if int(stage_start) != stage_start or stage_start < 1:
            raise ValueError(f"stage_start must be an int >= 1. Received: stage_start={stage_start!r}")
        self.schedule = schedule
        self.stage_start = int(stage_start)
        self.stage = stage
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        return ops.where(step < self.stage_start, self.schedule(step),
                         self.stage(ops.maximum(step - self.stage_start, 0.0)))

    def get_config(self):
        return {"schedule": keras.saving.serialize_keras_object(self.schedule), "stage_start": self.stage_start,
                "stage": keras.saving.serialize_keras_object(self.stage), "name": self.name}


def main_schedule(schedule):
    """The schedule of the first stage: `schedule` itself, or the one a `BalancedStage` starts with."""
    return schedule.schedule if isinstance(schedule, BalancedStage) else schedule
