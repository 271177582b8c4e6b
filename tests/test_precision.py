"""precision=mixed_bfloat16 with jit_compile and steps_per_execution set: a tiny run trains to a finite loss."""

import csv
import math

import keras
from tiny_run import tiny_config

import multi_label.model  # noqa: F401  registers the custom layers (normalisation, fused BatchNorm, heads) for loading
from multi_label.tasks.train import train


def test_mixed_bfloat16_trains_to_a_finite_loss(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
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
