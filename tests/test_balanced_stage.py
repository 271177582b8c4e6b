"""The balanced stage (balanced_epochs): a frozen backbone, a head re-initialised once, a restarted learning
rate, class-balanced batches, the best model of the whole run, and a kill inside the stage resumed exactly."""

import json

import keras
import numpy as np
import pytest
from test_end_to_end import run
from test_resume_state import backup, history, kill_when

from configs import Config
from multi_label.losses import BinaryCrossEntropy
from multi_label.model import backbone_layers, build_model
from multi_label.optim.finetune import FreezeBackbone
from multi_label.optim.schedule_callbacks import LearningRateLogger, schedule_callbacks
from multi_label.optim.schedules import ScheduleSettings, WarmupCosine, build_schedule
from multi_label.optim.stage_schedule import BalancedStage, main_schedule
from multi_label.tasks.settings import model_settings
from multi_label.training.balanced_stage import BalancedStageStart, head_layers, stage_started
from utils.config import ConfigError, load_config

# ------------------------------------------------------------------ the learning rate


def test_the_stage_restarts_the_learning_rate_with_a_cosine_of_its_own():
    settings = ScheduleSettings(lr_schedule="cosine", lr=0.01, epochs=3, warmup_epochs=0.0, min_lr=0.0,
                                balanced_epochs=2)
    schedule = build_schedule(settings, steps_per_epoch=10)
    assert isinstance(schedule, BalancedStage) and schedule.stage_start == 30
    main = WarmupCosine(0.01, 30, 0.0, 0)
    for step in (0, 10, 29):
        assert float(schedule(step)) == pytest.approx(float(main(step)), rel=1e-6)
    assert float(schedule(29)) < 1e-4  # the main cosine has decayed by the stage's start
    assert float(schedule(30)) == pytest.approx(0.01)  # ... which starts again at the peak
    assert float(schedule(40)) == pytest.approx(0.005, rel=1e-5)  # half-way down its own cosine
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert [float(clone(s)) for s in (5, 30, 45)] == [float(schedule(s)) for s in (5, 30, 45)]
    # balanced_lr, batch-scaled as lr is (here by 2)
    scaled = build_schedule(ScheduleSettings(**{**settings.__dict__, "balanced_lr": 0.001}), 10, learning_rate=0.02)
    assert float(scaled(30)) == pytest.approx(0.002) and float(scaled(0)) == pytest.approx(0.02)
    assert build_schedule(ScheduleSettings(**{**settings.__dict__, "balanced_epochs": 0}), 10).__class__ is WarmupCosine


def test_the_plateau_schedule_cuts_the_first_stage_only():
    settings = ScheduleSettings(lr_schedule="plateau", lr=0.01, epochs=3, warmup_epochs=0.0, balanced_epochs=1)
    schedule = build_schedule(settings, steps_per_epoch=10)
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    optimizer.lr_schedule = schedule
    callbacks = schedule_callbacks(settings, optimizer)
    assert callbacks[0].schedule is main_schedule(schedule) and isinstance(callbacks[-1], LearningRateLogger)


# ------------------------------------------------------------------ freezing, the head reset


def tiny_model():
    keras.utils.set_random_seed(0)
    model = build_model(model_settings(Config(backbone_width=0.125, image_size=32)), 3)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=BinaryCrossEntropy())
    return model


class Recorder(keras.callbacks.Callback):
    """The backbone's and the head's weights at each epoch end, and the head's at each epoch's first batch."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone, self.head = backbone, head
        self.ends, self.starts = [], []

    @staticmethod
    def weights(layers):
        return [np.array(w) for layer in layers for w in layer.get_weights()]

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.starts.append(self.weights(self.head))

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append((self.weights(self.backbone), self.weights(self.head)))


def same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def fit_with_stage(tmp_path, reset_head):
    """4 epochs, the last 2 the balanced stage; returns (recorder, stage callback, the head's initial weights)."""
    model = tiny_model()
    backbone, head = backbone_layers(model), head_layers(model)
    assert head and not {id(layer) for layer in head} & {id(layer) for layer in backbone}
    initial = Recorder.weights(head)
    stage = BalancedStageStart(head, start=2, epochs=2, backup_dir=str(tmp_path / "backup"), reset_head=reset_head)
    recorder = Recorder(backbone, head)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32"), rng.integers(0, 2, (16, 3)).astype("float32")
    model.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0,
              callbacks=[stage, FreezeBackbone(backbone, 0, frozen_from=2), recorder])
    assert all(layer.trainable for layer in backbone)  # trainable again after fit, for saving
    return recorder, stage, initial


def test_the_stage_freezes_the_backbone_and_trains_a_head_reset_once(tmp_path, capsys):
    recorder, stage, initial = fit_with_stage(tmp_path, reset_head=True)
    (backbone_1, head_1), (backbone_2, head_2), (backbone_3, head_3) = recorder.ends[1:]
    assert not same(recorder.ends[0][0], backbone_1)  # the first stage trains the backbone
    assert same(backbone_1, backbone_2) and same(backbone_2, backbone_3)  # the stage does not (BN statistics too)
    assert same(recorder.starts[2], initial) and not same(recorder.starts[2], head_1)  # reset at the stage's start
    assert not same(head_2, recorder.starts[2]) and not same(head_3, head_2)  # and trained in the stage
    assert same(recorder.starts[3], head_2)  # once: the stage's second epoch goes on from its first
    assert stage.resets == 1
    out = capsys.readouterr().out
    assert out.count("balanced stage (classifier re-training, Kang et al. 2020) for 2 epochs: backbone frozen, "
                     "head re-initialised, class-balanced sampling") == 1
    assert "Epoch 3: backbone frozen for the balanced stage" in out


def test_balanced_reset_head_false_keeps_the_trained_head(tmp_path, capsys):
    recorder, stage, _ = fit_with_stage(tmp_path, reset_head=False)
    assert same(recorder.starts[2], recorder.ends[1][1]) and stage.resets == 0
    assert not same(recorder.ends[2][1], recorder.ends[1][1])
    assert "head kept" in capsys.readouterr().out


def write_backup(folder, epoch, steps):
    (folder / "state-1").mkdir(parents=True)
    (folder / "state-1" / "meta.json").write_text(json.dumps({"epoch": epoch, "steps_in_epoch": steps}))
    (folder / "latest").write_text("state-1\n")


@pytest.mark.parametrize("epoch, steps, started", [(1, 5, False), (2, 0, False), (2, 3, True), (3, 0, True)])
def test_the_stage_has_started_by_the_backup(tmp_path, epoch, steps, started):
    assert not stage_started(str(tmp_path / "none"), 2)
    write_backup(tmp_path / "backup", epoch, steps)
    assert stage_started(str(tmp_path / "backup"), 2) is started


def test_a_run_resumed_inside_the_stage_keeps_the_backups_head(tmp_path, capsys):
    model = tiny_model()
    head = head_layers(model)
    write_backup(tmp_path / "backup", 2, 3)  # 3 steps into the stage's first epoch
    trained = [np.full_like(w, 0.5) for w in head[-1].get_weights()]
    stage = BalancedStageStart(head, start=2, epochs=2, backup_dir=str(tmp_path / "backup"))
    head[-1].set_weights(trained)  # as the backup's restore leaves it
    stage.set_model(model)
    stage.on_train_begin()
    stage.on_epoch_begin(2)
    stage.on_epoch_begin(3)
    assert same(head[-1].get_weights(), trained) and stage.resets == 0
    assert capsys.readouterr().out.count("the balanced stage goes on (epoch 1 of 2); the head is the backup's") == 1


def test_early_stopping_and_the_balanced_stage_are_refused_together():
    with pytest.raises(ConfigError, match="an early stop would end the run before the balanced stage"):
        load_config(["early_stopping_patience=2", "balanced_epochs=2"])
    assert load_config(["early_stopping_patience=2"]).balanced_epochs == 0


# ------------------------------------------------------------------ a whole run, killed inside the stage

# 210 training images / 16 = 13 steps per epoch; 2 epochs, then 2 balanced ones.
ARGS = ["epochs=2", "balanced_epochs=2", "warmup_epochs=0.5", "deterministic=True", "demo_images=300",
        "test_labels=''", "class_weighting='effective_number'", "repeat_factor_threshold=0.3", "run_name=r"]
STEPS = 210 // 16


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run the killed ones are compared with."""
    folder = tmp_path_factory.mktemp("straight_stage")
    result = run(folder, *ARGS)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Epoch 3: balanced stage (classifier re-training" in result.stdout
    assert "Finished 4 of 4 epochs" in result.stdout
    return folder / "models" / "r"


def assert_same_as_straight(straight, run_dir):
    want, got = history(straight), history(run_dir)
    assert sorted(got) == sorted(want) == [0, 1, 2, 3]
    assert [got[e]["lr"] for e in range(4)] == [want[e]["lr"] for e in range(4)]
    assert float(want[2]["lr"]) > float(want[1]["lr"])  # the stage's restart
    _, final_straight = backup(straight)
    _, final_resumed = backup(run_dir)
    assert final_straight.keys() == final_resumed.keys()
    for key in final_straight:
        np.testing.assert_allclose(final_resumed[key], final_straight[key], rtol=1e-5, atol=1e-6, err_msg=key)
    # the best model is chosen over both stages
    best = json.loads((run_dir / "best.json").read_text())
    assert best["value"] == pytest.approx(max(float(got[e]["val_mAP"]) for e in range(4)))


@pytest.mark.slow  # the shared uninterrupted run and a killed one through run.py: about 2 minutes on 2 cores
def test_killed_inside_the_stage_resumes_without_a_second_reset(tmp_path, straight):
    args = [*ARGS, "save_every_steps=4"]  # a backup inside the stage's first epoch
    meta, _ = kill_when(tmp_path, args, lambda m: m["epoch"] == 2 and 0 < m["steps_in_epoch"] < STEPS)
    resumed = run(tmp_path, *args)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"after epoch 2 and {meta['steps_in_epoch']} steps of epoch 3" in resumed.stdout
    assert "the balanced stage goes on (epoch 1 of 2); the head is the backup's" in resumed.stdout
    assert "balanced stage (classifier re-training" not in resumed.stdout  # no second reset
    assert_same_as_straight(straight, tmp_path / "models" / "r")


@pytest.mark.slow  # a killed run and its resume through run.py: about a minute on 2 cores
def test_killed_at_the_stage_start_resets_the_head_as_the_uninterrupted_run_did(tmp_path, straight):
    meta, _ = kill_when(tmp_path, ARGS, lambda m: m["epoch"] == 2)
    assert not meta["steps_in_epoch"]
    resumed = run(tmp_path, *ARGS)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Epoch 3: balanced stage (classifier re-training" in resumed.stdout  # the reset happens in this process
    assert_same_as_straight(straight, tmp_path / "models" / "r")
