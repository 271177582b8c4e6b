"""The precisions and XLA train: mixed_bfloat16 (with steps_per_execution), mixed_float16, and jit_compile=True,
each to a finite loss and a model that reloads; XLA gives the predictions of the uncompiled run. The mixed runs
compute in their low dtype with float32 variables, loss scaling for float16 only, and give the probabilities of
the float32 model with their weights up to that dtype's rounding. precision="auto" picks the policy of each
machine and a resumed run keeps it."""

import csv
import dataclasses
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny_run import tiny_config

import multi_label.model  # noqa: F401  registers the custom layers (normalisation, fused BatchNorm, heads) for loading
import multi_label.tasks.train as train_module
from multi_label.model import build_model
from multi_label.tasks.settings import model_settings
from multi_label.tasks.train import train

# Largest probability difference between a mixed run's model and the float32 model with its weights, on the 6
# validation images after an epoch. Measured: 6.7e-3 for bfloat16 (8 bits of mantissa), 1.9e-4 for float16 (11);
# the same model with other weights is 0.3 away; in float32 throughout, both are one computation (0 away).
MIXED_TOLERANCE = {"mixed_bfloat16": 0.05, "mixed_float16": 2e-3}


def record_fitted_models(monkeypatch):
    """A list that receives each model train() fits, compiled as it is trained (its optimizer with it)."""
    fitted = []
    fit = train_module.fit_unless_stopped

    def recording(model, *args, **kwargs):
        fitted.append(model)
        return fit(model, *args, **kwargs)

    monkeypatch.setattr(train_module, "fit_unless_stopped", recording)
    return fitted


def assert_mixed_precision(model, config, images):
    """A model reloaded from a run trained in `config.precision` (a mixed policy) computes in its low dtype.

    Its variables are float32; a convolution's activations come out in the low dtype; its probabilities are
    the float32 model's with the same weights, apart (so the low dtype was used) and within MIXED_TOLERANCE.
    """
    low = keras.DTypePolicy(config.precision).compute_dtype
    assert low in ("bfloat16", "float16")
    assert {variable.dtype for variable in model.weights} == {"float32"}  # the policy's variable dtype
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert keras.backend.standardize_dtype(keras.Model(model.input, conv.output)(images[:2]).dtype) == low
    reference = build_model(model_settings(config), model.output.shape[-1])  # under the global policy, float32
    assert {layer.dtype_policy.name for layer in reference.layers if layer.weights} == {"float32"}
    reference.set_weights(model.get_weights())
    got = np.asarray(keras.ops.sigmoid(model.predict(images, verbose=0)))
    want = np.asarray(keras.ops.sigmoid(reference.predict(images, verbose=0)))
    difference = float(np.abs(got - want).max())
    assert 0 < difference < MIXED_TOLERANCE[config.precision], difference
    assert np.ptp(want) > 0.05  # the outputs vary with the image: a real comparison


def test_mixed_bfloat16_trains_to_a_finite_loss(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fitted = record_fitted_models(monkeypatch)
    config = tiny_config(tmp_path / "data", precision="mixed_bfloat16", jit_compile=False, steps_per_execution=2,
                         epochs=1, test_labels="")
    keras.utils.set_random_seed(config.seed)  # as run.py does before it dispatches
    best = train(config)
    with open(tmp_path / "models" / "tiny" / "history.csv") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert len(losses) == 1 and math.isfinite(losses[0]) and losses[0] > 0
    model = keras.saving.load_model(best, compile=False)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(layer.dtype_policy.name == "mixed_bfloat16" for layer in convs)
    assert model.get_layer("logits").dtype_policy.name == "float32"  # logits and the loss stay float32
    assert keras.mixed_precision.global_policy().name == "float32"  # train() put the global policy back
    # bfloat16 has float32's range: Keras scales no loss, and the optimizer is the one configured
    assert len(fitted) == 1 and not isinstance(fitted[0].optimizer, keras.optimizers.LossScaleOptimizer)
    assert_mixed_precision(model, config, val_images(config))


def train_tiny(folder, monkeypatch, **changes):
    """Trains the tiny run for one epoch in `folder`; returns (losses per epoch, best model reloaded, config)."""
    monkeypatch.chdir(folder)
    config = tiny_config(folder / "data", epochs=1, test_labels="", **changes)
    keras.utils.set_random_seed(config.seed)
    best = train(config)
    with open(folder / "models" / "tiny" / "history.csv") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    return losses, keras.saving.load_model(best, compile=False), config


def val_images(config):
    from dataset.labels import read_labels

    table = read_labels(config.val_labels)
    return np.stack([tf.image.resize(tf.io.decode_image(tf.io.read_file(path), channels=3), (32, 32)).numpy()
                     for path in table.images])


def test_xla_compiled_training_gives_the_predictions_of_uncompiled_training(tmp_path, monkeypatch):
    (tmp_path / "xla").mkdir(), (tmp_path / "plain").mkdir()
    xla_losses, xla_model, config = train_tiny(tmp_path / "xla", monkeypatch, jit_compile=True)
    plain_losses, plain_model, _ = train_tiny(tmp_path / "plain", monkeypatch, jit_compile=False)
    assert len(xla_losses) == 1 and math.isfinite(xla_losses[0]) and xla_losses[0] > 0
    # XLA fuses and reorders the float32 arithmetic: the same steps up to rounding. Measured: the same loss
    # and probabilities 1.6e-6 apart after an epoch; a step done differently (another batch, a missed update)
    # moves them by 1e-2 and more.
    assert xla_losses[0] == pytest.approx(plain_losses[0], rel=1e-4)
    images = val_images(config)
    got = keras.ops.sigmoid(xla_model.predict(images, verbose=0))
    want = keras.ops.sigmoid(plain_model.predict(images, verbose=0))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4)
    assert np.ptp(np.asarray(want)) > 1e-3  # the model's outputs vary with the image: a real comparison


def test_mixed_float16_trains_to_a_finite_loss_and_reloads(tmp_path, monkeypatch):
    fitted = record_fitted_models(monkeypatch)
    losses, model, config = train_tiny(tmp_path, monkeypatch, precision="mixed_float16")
    assert len(losses) == 1 and math.isfinite(losses[0]) and losses[0] > 0
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(layer.dtype_policy.name == "mixed_float16" for layer in convs)
    assert model.get_layer("logits").dtype_policy.name == "float32"
    outputs = model.predict(val_images(config), verbose=0)
    assert outputs.dtype == np.float32 and np.isfinite(outputs).all()
    assert keras.mixed_precision.global_policy().name == "float32"
    # float16 underflows small gradients: Keras scales the loss, and skips a step whose scaled gradients overflow.
    # The inner optimizer counts the steps applied (all 5 when measured); none would mean nothing was trained.
    optimizer = fitted[0].optimizer
    assert len(fitted) == 1 and isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.asarray(optimizer.iterations) > 0 and 1 <= np.asarray(optimizer.dynamic_scale) < math.inf
    assert_mixed_precision(model, config, val_images(config))


@pytest.mark.parametrize("capabilities, flags, policy", [
    ([(9, 0)], set(), "mixed_bfloat16"),  # Hopper
    ([(8, 0), (8, 6)], set(), "mixed_bfloat16"),  # Ampere
    ([(7, 5)], {"amx_bf16"}, "mixed_float16"),  # Turing: the GPU decides, not the CPU
    ([(8, 0), (7, 0)], set(), "mixed_float16"),  # the oldest GPU decides: every replica runs one policy
    ([(6, 1)], set(), "float32"),  # Pascal: no tensor cores
    ([], {"fpu", "avx512f", "amx_bf16", "amx_tile"}, "mixed_bfloat16"),  # Sapphire Rapids and later
    ([], {"avx512f", "avx512_bf16"}, "mixed_bfloat16"),  # Cooper Lake, Zen 4
    ([], {"avx512f", "avx2"}, "float32"),  # bfloat16 would be emulated
    ([], set(), "float32"),  # no /proc/cpuinfo
])
def test_auto_precision_picks_the_policy_of_each_machine(capabilities, flags, policy):
    from multi_label.training.mixed_precision import choose_precision

    chosen, reason = choose_precision(capabilities, flags)
    assert chosen == policy
    assert ("GPU compute capability" in reason) == bool(capabilities) and "\n" not in reason


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    from multi_label.training.mixed_precision import cpu_flags

    (tmp_path / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Xeon\nflags\t\t: fpu sse2 avx512f amx_bf16\n"
                                      "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(str(tmp_path / "cpuinfo")) == {"fpu", "sse2", "avx512f", "amx_bf16"}
    assert cpu_flags(str(tmp_path / "missing")) == set()


def test_auto_precision_is_saved_with_the_run_and_kept_on_resume(tmp_path, monkeypatch, capsys):
    import json

    from multi_label.training import mixed_precision as precision

    monkeypatch.setattr(precision, "gpu_capabilities", lambda: [])
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512f", "amx_bf16"})  # as on a Xeon with AMX
    losses, model, config = train_tiny(tmp_path, monkeypatch, precision="auto")
    out = capsys.readouterr().out
    assert "precision=auto: mixed_bfloat16 (no GPU; the CPU runs bfloat16 natively (amx_bf16))" in out
    assert "1 replicas, mixed_bfloat16)" in out and math.isfinite(losses[0])
    assert model.get_layer("logits").dtype_policy.name == "float32"
    assert all(layer.dtype_policy.name == "mixed_bfloat16" for layer in model.layers
               if isinstance(layer, keras.layers.Conv2D))
    saved = json.loads((tmp_path / "models" / "tiny" / "config.json").read_text())
    assert saved["precision"] == "mixed_bfloat16"  # the policy itself, not "auto"

    # the same command on a machine without bfloat16: the run keeps the precision it trained with
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512f"})
    keras.utils.set_random_seed(config.seed)
    train(config)
    out = capsys.readouterr().out
    assert "precision=auto: mixed_bfloat16, as the run being resumed trained with" in out
    assert "1 replicas, mixed_bfloat16)" in out
    # a new run there chooses afresh
    keras.utils.set_random_seed(config.seed)
    train(dataclasses.replace(config, run_name="fresh"))
    out = capsys.readouterr().out
    assert "precision=auto: float32 (no GPU, and the CPU has no native bfloat16" in out
    assert "1 replicas, float32)" in out


def test_a_mixed_bfloat16_run_exports_as_float32_and_its_parity_holds(tmp_path, monkeypatch):
    """TFLite has no bfloat16 kernels: a bfloat16 checkpoint is exported as its float32 copy, whose formats
    reproduce it to the float tolerance, and the model as trained is compared by the mAP it loses."""
    import json

    from multi_label.export.parity import FLOAT_TOLERANCE, TRAINED_PREFIX
    from multi_label.tasks.convert import run_convert

    _, model, config = train_tiny(tmp_path, monkeypatch, precision="mixed_bfloat16")
    run_convert(dataclasses.replace(config, mode="convert", test_labels=str(tmp_path / "data" / "test.csv"),
                                    formats=("keras", "savedmodel", "tflite_float32", "tflite_int8")))
    report = json.loads((tmp_path / "models" / "tiny" / "export" / "parity.json").read_text())
    rows = report["formats"]
    assert set(rows) == {"keras", "savedmodel (uint8)", "savedmodel (bytes)", "tflite_float32", "tflite_int8",
                         TRAINED_PREFIX + "mixed_bfloat16"}
    for name in ("keras", "savedmodel (uint8)", "tflite_float32"):
        assert rows[name]["max_abs_diff"] <= FLOAT_TOLERANCE and rows[name]["meets_bar"], (name, rows[name])
    trained = rows[TRAINED_PREFIX + "mixed_bfloat16"]
    # bfloat16 rounding of the activations: visible, small, judged by the mAP it loses
    assert 0 < trained["max_abs_diff"] < 0.05 and "mAP_drop_points" in trained
    exported = keras.saving.load_model(str(tmp_path / "models" / "tiny" / "export" / "model.keras"), compile=False)
    assert {layer.dtype_policy.name for layer in exported.layers} == {"float32"}
    assert model.get_layer("logits").dtype_policy.name == "float32"
