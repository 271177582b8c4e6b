"""The built-in demo data: deterministic, disjoint digit pools, and not solvable from colour."""

import hashlib

import numpy as np
from PIL import Image

from dataset.demo import CLASS_NAMES, _split_pools, build_demo_data, ensure_demo_data
from dataset.labels import read_labels


def digest(folder):
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    build_demo_data(str(tmp_path / "a"), 40, seed=1)
    build_demo_data(str(tmp_path / "b"), 40, seed=1)
    build_demo_data(str(tmp_path / "c"), 40, seed=2)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_splits_labels_and_images(tmp_path):
    paths = build_demo_data(str(tmp_path), 200, seed=0, groups=True)
    sizes = {split: len(read_labels(p)) for split, p in paths.items()}
    assert sizes == {"train": 140, "val": 20, "test": 40}
    table = read_labels(paths["train"])
    assert table.class_names == CLASS_NAMES
    counts = table.labels.sum(axis=1)
    assert counts.min() >= 1 and counts.max() <= 4
    image = Image.open(table.images[0])
    assert image.mode == "RGB" and image.size == (64, 64) and image.format == "JPEG"
    groups = read_labels(str(tmp_path / "train_groups.csv"), groups={f"pos{i}": 10 for i in range(1, 5)})
    present = np.zeros_like(table.labels)
    for row, digits in enumerate(groups.labels):
        present[row, digits[digits >= 0]] = 1
    assert (present == table.labels).all()  # the position labels name the same digits


def test_digit_pools_are_disjoint():
    targets = np.repeat(np.arange(10), 50)
    pools = _split_pools(targets, np.random.default_rng(0))
    train, val, test = (set(pools[s].tolist()) for s in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert len(train | val | test) == len(targets)


def test_colour_statistics_do_not_reveal_the_digits(tmp_path):
    """A classifier on colour statistics alone stays near chance: the task needs shapes."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score

    paths = build_demo_data(str(tmp_path), 1000, seed=3)

    def features(table):
        images = np.stack([np.asarray(Image.open(p), np.float32) / 255 for p in table.images])
        flat = images.reshape(len(images), -1, 3)
        percentiles = np.percentile(flat, [10, 50, 90], axis=1).reshape(len(images), -1)
        return np.concatenate([flat.mean(1), flat.std(1), percentiles], 1)

    train, test = read_labels(paths["train"]), read_labels(paths["test"])
    x_train, x_test = features(train), features(test)
    aps, chance = [], []
    for c in range(10):
        model = LogisticRegression(max_iter=2000).fit(x_train, train.labels[:, c])
        aps.append(average_precision_score(test.labels[:, c], model.predict_proba(x_test)[:, 1]))
        chance.append(test.labels[:, c].mean())
    assert np.mean(aps) < np.mean(chance) + 0.1, (np.mean(aps), np.mean(chance))


def test_ensure_builds_only_missing_files_inside_the_demo_folder(tmp_path, capsys):
    folder = tmp_path / "demo"
    ensure_demo_data([str(tmp_path / "mine.csv"), ""], str(folder), 20, seed=0)
    assert not folder.exists()  # a missing file of the user's own is never replaced by demo data
    ensure_demo_data([str(folder / "train.csv"), str(folder / "val.csv")], str(folder), 20, seed=0, groups=True)
    assert f"Building the demo data in {folder} (20 images, seed 0)" in capsys.readouterr().out
    assert (folder / "train.csv").is_file() and (folder / "test_groups.csv").is_file()
    ensure_demo_data([str(folder / "train.csv")], str(folder), 20, seed=0)
    assert "Building" not in capsys.readouterr().out  # present: left as it is
