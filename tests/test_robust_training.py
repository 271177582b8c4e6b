"""A training run survives a broken image in its label file and names it."""

import numpy as np
from PIL import Image
from test_end_to_end import history_epochs, run


def test_truncated_jpeg_in_train_labels_is_skipped_and_named(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["image,even,odd"]
    for i in range(40):
        pixels = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.jpg", quality=90)
        rows.append(f"{i}.jpg,{int(i % 2 == 0)},{int(i % 2 == 1)}")
    data = (tmp_path / "7.jpg").read_bytes()
    (tmp_path / "7.jpg").write_bytes(data[: len(data) // 2])  # a download cut off halfway
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")

    result = run(tmp_path, "train_labels='train.csv'", "val_labels=''", "test_labels=''", "epochs=2",
                 "run_name=robust", "batch_size=8")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "warning: skipped training image that failed to decode:" in output
    named = [line for line in output.splitlines() if "failed to decode" in line]
    assert len(named) == 1 and named[0].endswith("7.jpg"), named
    assert history_epochs(tmp_path / "models" / "robust") == [0, 1]
