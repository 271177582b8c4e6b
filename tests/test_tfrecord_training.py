"""Training from TFRecord shards end to end: written on first use, killed and resumed, then test and predict
read the same shards, and everything equals a run from the image files."""

import csv
import json

import pytest
from test_end_to_end import run
from test_resume_state import kill_when

# 210 training images in 13 steps of 16; deterministic=True: a run is repeatable to the last digit, so the
# two runs can only differ where the data does.
ARGS = ["epochs=2", "demo_images=300", "deterministic=True", "run_name=r", "color_jitter=0.2"]
SHARDS = ["data_format='tfrecord'"]


def predictions(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # three runs through run.py: about 2 minutes on 2 CPU cores
def test_tfrecord_run_killed_and_resumed_tests_and_predicts_as_a_run_from_files(tmp_path):
    files, shards = tmp_path / "files", tmp_path / "shards"
    files.mkdir(), shards.mkdir()
    from_files = run(files, *ARGS)
    assert from_files.returncode == 0, from_files.stdout[-3000:] + from_files.stderr[-3000:]
    assert "Writing TFRecords" not in from_files.stdout

    kill_when(shards, [*ARGS, *SHARDS], lambda meta: meta["epoch"] == 1)
    written = sorted(p.relative_to(shards).as_posix() for p in (shards / "data" / "demo").glob("*.tfrecords/*"))
    assert {"data/demo/train.tfrecords/data.json", "data/demo/val.tfrecords/data.json"} <= set(written), written
    resumed = run(shards, *ARGS, *SHARDS)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Resuming from the backup after epoch 1" in resumed.stdout
    # the shards of the killed run are fresh (the label files are older): read, not written again; the test
    # split's are written by mode=test at the end of the run
    assert "Writing TFRecords for data/demo/train.csv" not in resumed.stdout
    assert "Writing TFRecords for data/demo/test.csv" in resumed.stdout
    assert (shards / "data" / "demo" / "test.tfrecords" / "data.json").is_file()

    want = json.loads((files / "models" / "r" / "metrics.json").read_text())
    got = json.loads((shards / "models" / "r" / "metrics.json").read_text())
    assert got["images"] == want["images"] == 60
    assert got["mAP"] == pytest.approx(want["mAP"], abs=1e-6) and got["mAP"] > 0
    for key in ("CF1", "OF1"):
        assert got["at_fixed_threshold"][key] == pytest.approx(want["at_fixed_threshold"][key], abs=1e-6)
    calibrated = [json.loads((folder / "models" / "r" / "calibration.json").read_text()) for folder in (files, shards)]
    assert calibrated[1]["val_images"] == calibrated[0]["val_images"] == 30
    assert calibrated[1]["temperature"] == pytest.approx(calibrated[0]["temperature"], abs=1e-5)
    rows = [predictions(folder / "models" / "r" / "predictions.csv") for folder in (files, shards)]
    assert [row["image"] for row in rows[1]] == [row["image"] for row in rows[0]]  # the label file's order

    # predict on the test label file: from its shards (written by mode=test above) as from its files
    outputs = []
    for folder, extra in ((files, []), (shards, SHARDS)):
        result = run(folder, *ARGS, "mode=predict", "input=data/demo/test.csv", f"output={folder}/p.csv", *extra)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        outputs.append(predictions(folder / "p.csv"))
    assert "Writing TFRecords" not in result.stdout  # the test split's shards were fresh
    assert [row["image"] for row in outputs[1]] == [row["image"] for row in outputs[0]]
    assert len(outputs[0]) == 60
    for got, want in zip(*outputs):
        assert got["labels"] == want["labels"]
        for name in want:
            if name not in ("image", "labels"):
                assert float(got[name]) == pytest.approx(float(want[name]), abs=1e-5), (got["image"], name)
