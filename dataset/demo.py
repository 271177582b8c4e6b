"""Built-in demo data: multi-digit images made from scikit-learn's bundled handwritten digits.

Each image holds 1 to 4 digits at random positions, scales and colours on a varied background;
its labels say which of the ten digits appear. Nothing is downloaded: `load_digits` ships with
scikit-learn. Colours and backgrounds are drawn independently of the digits, so the only way to
the labels is to recognise digit shapes, which is what a CNN has to learn. No flips or rotations
are used: they would turn a 6 into a 9 or a 2 into something else.

The 1,797 source digits are split into disjoint pools for train, val and test, so the test split
measures recognition of handwriting the model has never seen, not memorisation.

A long-tailed variant (`long_tail` > 1, the `demo_long_tail` setting) draws the train split's
digits with frequencies that fall off geometrically from 0 to 9, digit d in proportion to
long_tail^(-d/9), so digit 0 is drawn `long_tail` times as often as digit 9. The val and test
splits stay balanced, the usual protocol of long-tailed benchmarks (ImageNet-LT, CIFAR-LT): a rare
class is measured on as many test images as a frequent one. The share of training images that
contain a digit falls off less steeply than its draws (an image holds up to four digits).

`demo.json` in the folder records the settings it was built with; `ensure_demo_data` refuses a
folder built with other `demo_images` or `demo_long_tail` rather than reuse it silently.
"""

import json
import os

import numpy as np
from PIL import Image
from tqdm import tqdm

from dataset.labels import write_labels_csv
from utils.atomic import write_text
from utils.config import ConfigError

CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SPLITS = {"train": 0.7, "val": 0.1, "test": 0.2}  # fraction of source digits and of images
CANVAS = 64  # pixels; the pipeline resizes to the configured image_size
DIGIT_SIZE = (0.3, 0.45)  # digit side as a fraction of the canvas side (19 to 29 px at 64)
MAX_OVERLAP = 0.05  # fraction of a digit's box that another digit may cover
BLOB_BACKGROUNDS = True  # include low-frequency colour clutter among the backgrounds
MANIFEST = "demo.json"  # the settings a demo folder was built with


def build_demo_data(folder, num_images, seed, canvas=CANVAS, groups=False, long_tail=1.0):
    """Writes `<folder>/{train,val,test}/*.jpg` and `<folder>/{train,val,test}.csv`.

    Args:
        folder: str. Output folder.
        num_images: int. Images over all three splits (70/10/20).
        seed: int. Seed: the same seed gives the same files.
        canvas: int. Side of the square images in pixels.
        groups: bool. Also write `<split>_groups.csv` with one attribute per digit position
            (`pos1`..`pos4`, left to right; value = digit, -1 where the position is empty), the
            label layout of a `groups` head.
        long_tail: float. >= 1; the train split draws digit 0 this many times as often as digit 9
            (see the module docstring); 1.0: every digit alike.

    Returns:
        dict[str, str]. Split name to label file path.
    """
    from sklearn.datasets import load_digits  # imported here: only the demo needs scikit-learn's data

    digits = load_digits()
    rng = np.random.default_rng(seed)
    pools = _split_pools(digits.target, rng)
    os.makedirs(folder, exist_ok=True)
    write_text(os.path.join(folder, MANIFEST), json.dumps(manifest(num_images, seed, long_tail)) + "\n")
    paths = {}
    for split, fraction in SPLITS.items():
        weights = digit_weights(long_tail) if split == "train" and long_tail != 1.0 else None
        count = max(1, int(round(num_images * fraction)))
        os.makedirs(os.path.join(folder, split), exist_ok=True)
        names, labels, positions = [], [], []
        for i in tqdm(range(count), desc=f"demo {split}", unit="img", leave=False, disable=None):
            image, present, order = _compose(digits.images, digits.target, pools[split], rng, canvas, weights)
            name = f"{split}/{i:05d}.jpg"
            image.save(os.path.join(folder, name), quality=90)
            names.append(name)
            labels.append(present)
            positions.append(order + [-1] * (4 - len(order)))
        paths[split] = os.path.join(folder, f"{split}.csv")
        if groups:
            write_labels_csv(os.path.join(folder, f"{split}_groups.csv"), names, ["pos1", "pos2", "pos3", "pos4"],
                             positions)
        # The plain label file is written last: its presence marks the split as complete.
        write_labels_csv(paths[split], names, CLASS_NAMES, labels)
    return paths


def ensure_demo_data(label_files, folder, num_images, seed, groups=False, long_tail=1.0):
    """Builds the demo data (`build_demo_data`) when one of `label_files` inside `folder` is missing.

    Label files elsewhere are the user's own: a missing one is an error for the caller to report,
    never replaced by demo data. A folder whose `demo.json` records other `demo_images` or
    `demo_long_tail` is refused with one line when files are to be built into it or a long tail is
    asked for that it does not hold; complete data is otherwise used with a note (a folder without
    demo.json, built before it was written, is taken as it is). The seed is recorded, not compared:
    runs with other seeds may share the data.

    Args:
        label_files: list[str]. The run's label files; "" entries (no file) are skipped.
        folder: str. The demo data folder (the `demo_data_dir` setting).
        num_images: int. Images over all three splits.
        seed: int. Seed of the demo data.
        groups: bool. Also write the `groups` head's label files.
        long_tail: float. The train split's digit imbalance (`demo_long_tail`).

    Raises:
        ConfigError: the folder holds demo data built with other settings.
    """
    inside = os.path.abspath(folder) + os.sep
    ours = [p for p in label_files if p and os.path.abspath(p).startswith(inside)]
    if not ours:
        return
    missing = any(not os.path.isfile(p) for p in ours)
    check_demo_folder(folder, num_images, long_tail, missing)
    if missing:
        tail = f", long tail {long_tail:g}:1" if long_tail != 1.0 else ""
        print(f"Building the demo data in {folder} ({num_images} images, seed {seed}{tail})")
        build_demo_data(folder, num_images, seed, groups=groups, long_tail=long_tail)


def manifest(num_images, seed, long_tail):
    """The settings a demo folder is built with, as `demo.json` records them."""
    return {"demo_images": int(num_images), "demo_long_tail": float(long_tail), "seed": int(seed)}


def check_demo_folder(folder, num_images, long_tail, building):
    """Refuses a demo folder that cannot serve these settings; notes one that was built with others.

    ConfigError when `folder`'s demo.json records other demo_images or demo_long_tail and files
    are to be built into it (they would mix two datasets), or when a long tail is asked for
    (demo_long_tail != 1) that the folder does not hold. Otherwise its complete data is used as it
    is, with a note: mode=test or convert of a run on demo data need not repeat its demo settings.
    """
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        return
    with open(path) as f:
        built = json.load(f)
    wanted = {"demo_images": int(num_images), "demo_long_tail": float(long_tail)}
    changed = [f"{key}={built.get(key)!r}" for key, value in wanted.items() if built.get(key) != value]
    if not changed:
        return
    if not building and (long_tail == 1.0 or built.get("demo_long_tail") == float(long_tail)):
        print(f"note: demo_data_dir={folder!r} holds demo data built with {', '.join(changed)}; using it as it is")
        return
    now = ", ".join(f"{key}={value!r}" for key, value in wanted.items())
    raise ConfigError(f"demo_data_dir={folder!r} holds demo data built with {', '.join(changed)}, not {now}; "
                      "set demo_data_dir (and the label files) to another folder, or delete this one")


def digit_weights(long_tail):
    """Draw probabilities of the digits 0-9: proportional to long_tail^(-d/9), summing to 1."""
    weights = float(long_tail) ** (-np.arange(10) / 9.0)
    return weights / weights.sum()


def _split_pools(targets, rng):
    pools = {split: [] for split in SPLITS}
    for digit in range(10):
        index = rng.permutation(np.flatnonzero(targets == digit))
        edges = np.cumsum([int(round(len(index) * f)) for f in SPLITS.values()])[:-1]
        for split, part in zip(SPLITS, np.split(index, edges)):
            pools[split].extend(part.tolist())
    return {split: np.array(pool) for split, pool in pools.items()}


def _compose(images, targets, pool, rng, canvas, weights=None):
    background = _background(rng, canvas)
    image = background.copy()
    boxes = []
    placed = []  # (x, digit)
    for _ in range(rng.integers(1, 5)):
        source = _draw_source(targets, pool, rng, weights)
        size = int(round(canvas * rng.uniform(*DIGIT_SIZE)))
        box = _place(rng, canvas, size, boxes)
        if box is None:
            continue
        boxes.append(box)
        x, y = box[0], box[1]
        alpha = _resize(images[source] / 16.0, size)
        colour = _contrasting_colour(rng, background[y:y + size, x:x + size].mean(axis=(0, 1)))
        patch = image[y:y + size, x:x + size]
        image[y:y + size, x:x + size] = patch * (1 - alpha[..., None]) + colour * alpha[..., None]
        placed.append((x, int(targets[source])))
    image = image + rng.normal(0, rng.uniform(0.0, 0.05), image.shape)  # sensor-like noise
    present = np.zeros(10, np.int32)
    for _, digit in placed:
        present[digit] = 1
    order = [digit for _, digit in sorted(placed)]
    return Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)), present, order


def _draw_source(targets, pool, rng, weights):
    """A source digit of `pool`: uniform over the pool, or its digit drawn first by `weights` (the long tail)."""
    if weights is None:  # the draws of the balanced demo, unchanged
        return pool[rng.integers(len(pool))]
    candidates = pool[targets[pool] == rng.choice(10, p=weights)]
    return candidates[rng.integers(len(candidates))]


def _background(rng, canvas):
    kind = rng.integers(3 if BLOB_BACKGROUNDS else 2)
    if kind == 0:  # flat colour
        return np.broadcast_to(rng.uniform(0, 1, 3), (canvas, canvas, 3)).copy()
    if kind == 1:  # linear gradient between two colours in a random direction
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:canvas, 0:canvas] / canvas
        t = (np.cos(angle) * xx + np.sin(angle) * yy)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
        a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        return a + (b - a) * t[..., None]
    # low-frequency colour blobs: smooth clutter that is neither digit-like nor uniform
    coarse = rng.uniform(0, 1, (4, 4, 3))
    return np.stack([_resize(coarse[..., c], canvas) for c in range(3)], axis=-1)


def _place(rng, canvas, size, boxes, tries=30):
    for _ in range(tries):
        x, y = rng.integers(0, canvas - size + 1, 2)
        box = (int(x), int(y), int(x) + size, int(y) + size)
        if all(_overlap(box, other) <= MAX_OVERLAP for other in boxes):
            return box
    return None


def _overlap(a, b):
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / float((a[2] - a[0]) * (a[3] - a[1]))


def _contrasting_colour(rng, behind):
    # A digit must stay visible: redraw until its brightness differs clearly from what is behind it.
    luminance = lambda c: float(c @ np.array([0.299, 0.587, 0.114]))
    for _ in range(50):
        colour = rng.uniform(0, 1, 3)
        if abs(luminance(colour) - luminance(behind)) > 0.35:
            return colour
    return np.ones(3) if luminance(behind) < 0.5 else np.zeros(3)


def _resize(array, size):
    image = Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8))
    return np.asarray(image.resize((size, size), Image.BILINEAR), np.float32) / 255.0
