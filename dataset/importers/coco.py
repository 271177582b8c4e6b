"""COCO instances JSON (`instances_train2017.json` style) to the canonical label CSV.

An image is labelled with every category that has an annotation in it. Only the JSON is read:
no image is opened, which is what made the original lists take hours to build.

Crowd annotations (`iscrowd: 1`) mark a group of objects drawn as one region; the objects are in
the picture. `crowd` says what they mean for a label:

    "positive" (default)  the class is present. Published multi-label COCO results count every
                          annotation (ASL's loader, for one, takes `getAnnIds` with crowds
                          included), so this default keeps numbers comparable.
    "ignore"              crowd annotations are dropped: present only with a non-crowd instance.
    "unknown"             a class seen only as a crowd in an image is -1 there (ignored by losses
                          and metrics).
"""

import contextlib
import gc
import json
import os
import re

import numpy as np
from tqdm import tqdm

from dataset.importers.canonical_csv import write_imported
from dataset.labels import LabelFileError, paths_relative_to

CROWD_MODES = ("positive", "ignore", "unknown")
HELP = "COCO instances JSON (instances_train2017.json style)"


def add_arguments(parser):
    """The command-line options of `import_coco`, named like its arguments."""
    parser.add_argument("source", help="COCO instances JSON")
    parser.add_argument("--image-prefix", default=None,
                        help="folder holding the images, joined to each file_name (default: file_name as is)")
    parser.add_argument("--crowd", choices=CROWD_MODES, default="positive",
                        help="iscrowd annotations: class present (default), ignored, or -1 when the class "
                             "has no other instance in the image")
    parser.add_argument("--drop-empty", action="store_true", help="leave out images with no annotation")


def import_coco(json_path, out_csv, image_prefix=None, crowd="positive", drop_empty=False):
    """Imports a COCO instances file.

    Args:
        json_path: str. The instances JSON.
        out_csv: str. Output canonical CSV.
        image_prefix: str or None. Folder (absolute or relative to the working directory)
            holding the images, joined to each `file_name` and then written relative to the
            CSV's folder. None writes `file_name` unchanged, so the CSV must sit beside the
            images or be read with `image_root`.
        crowd: str. One of "positive", "ignore", "unknown"; see the module docstring.
        drop_empty: bool. Leave out images with no annotation at all (kept as all-negative
            rows by default: they are valid negatives for every class).

    Returns:
        LabelTable. The written table.
    """
    file_names, class_names, labels = coco_labels(json_path, crowd, drop_empty)
    if image_prefix is None:
        names = file_names
    else:
        names = paths_relative_to(out_csv, [os.path.join(image_prefix, f) for f in file_names])
    return write_imported(out_csv, names, class_names, labels, json_path)


def coco_labels(json_path, crowd="positive", drop_empty=False):
    """Reads the labels of a COCO instances file without writing anything.

    Args:
        json_path: str. The instances JSON.
        crowd: str. One of "positive", "ignore", "unknown".
        drop_empty: bool. Leave out images with no annotation.

    Returns:
        Tuple `(file_names, class_names, labels)`: list[str] in the order of `images`,
        list[str] in category-id order, int32 np.ndarray [images, classes].
    """
    if crowd not in CROWD_MODES:
        raise ValueError(f"crowd must be one of {list(CROWD_MODES)}. Received: crowd={crowd!r}")
    data = _load(json_path)
    images = _require_list(json_path, data, "images")
    categories = _require_list(json_path, data, "categories")
    annotations = _require_list(json_path, data, "annotations")
    for k, category in enumerate(categories):
        _field(json_path, "categories", k, category, "id")
        _field(json_path, "categories", k, category, "name")
    categories = sorted(categories, key=lambda c: c["id"])

    class_names = [str(c["name"]) for c in categories]
    repeated = sorted({n for n in class_names if class_names.count(n) > 1})
    if repeated:
        raise LabelFileError(f"{json_path}: 'categories' repeats the names {repeated}")
    column_of = {c["id"]: j for j, c in enumerate(categories)}
    row_of = {}
    for i, image in enumerate(images):
        _field(json_path, "images", i, image, "file_name")
        if _field(json_path, "images", i, image, "id") in row_of:
            raise LabelFileError(f"{json_path}: images[{i}] repeats image id {image['id']}")
        row_of[image["id"]] = i

    rows, columns, is_crowd = _annotation_cells(json_path, annotations, row_of, column_of)
    labels = np.zeros((len(images), len(class_names)), np.int32)
    if crowd == "positive":
        labels[rows, columns] = 1
    else:
        if crowd == "unknown":
            labels[rows[is_crowd], columns[is_crowd]] = -1
        # Assigned after the crowd cells so a non-crowd instance of the class wins.
        labels[rows[~is_crowd], columns[~is_crowd]] = 1

    keep = np.ones(len(images), bool)
    if drop_empty:
        keep[:] = False
        keep[rows] = True
    file_names = [images[i]["file_name"] for i in np.flatnonzero(keep)]
    return file_names, class_names, labels[keep]


# Numeric arrays (polygons, RLE counts, boxes) are three quarters of an instances file and most of
# its parse time; no label needs them. Blanking them to `[]` before parsing (1 CPU-second), with
# the collector paused, takes a COCO-sized parse from 19 to under 3 CPU-seconds
# (benchmarks/bench_coco_import.py).
# A match holds no quote, so it never spans a string boundary and the result stays valid JSON.
# Inside a string it would change the text, so a file whose image or category names contain '['
# is parsed as it is. The loose pattern also blanks a malformed numeric array such as `[1,,2]`;
# a strict number grammar costs 5x the time, and those arrays are discarded anyway.
_NUMERIC_ARRAY = re.compile(rb"\[[-+0-9.eE,\s]*\]")
_BRACKET_IN_NAME = re.compile(rb'"(?:file_name|name)"\s*:\s*"(?:[^"\\]|\\.)*\[')


def _load(json_path):
    if not os.path.isfile(json_path):
        raise LabelFileError(f"{json_path}: COCO annotation file not found")
    print(f"reading {json_path} ({os.path.getsize(json_path) / 2**20:.0f} MiB)")
    with open(json_path, "rb") as f:
        raw = f.read()
    try:
        with _collector_paused():
            if _BRACKET_IN_NAME.search(raw):
                return json.loads(raw)
            return json.loads(_NUMERIC_ARRAY.sub(b"[]", raw))
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    try:  # parse the original text again so the error gives its true line and column
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise LabelFileError(f"{json_path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from e
    except UnicodeDecodeError as e:
        raise LabelFileError(f"{json_path}: not UTF-8 text ({e.reason} at byte {e.start})") from e


@contextlib.contextmanager
def _collector_paused():
    """Parsing builds millions of dicts and lists; the cyclic garbage collector rescans them
    again and again as they pile up, which doubles the parse time. Parsed JSON holds no cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _require_list(json_path, data, key):
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise LabelFileError(f"{json_path}: expected a COCO instances file with a '{key}' list")
    return data[key]


def _field(json_path, section, index, entry, key):
    if not isinstance(entry, dict) or key not in entry:
        raise LabelFileError(f"{json_path}: {section}[{index}] has no '{key}'")
    return entry[key]


def _annotation_cells(json_path, annotations, row_of, column_of):
    """Row, column and crowd flag of every annotation, checked against images and categories."""
    rows, columns, is_crowd = [], [], []  # list appends beat numpy item assignment here
    for k, ann in enumerate(tqdm(annotations, desc="annotations", unit="ann", mininterval=0.5)):
        image_id, category_id = ann.get("image_id"), ann.get("category_id")
        if image_id not in row_of:
            raise LabelFileError(
                f"{json_path}: annotations[{k}] (id {ann.get('id')}) has image_id {image_id!r}, "
                "which is not an id in 'images'")
        if category_id not in column_of:
            raise LabelFileError(
                f"{json_path}: annotations[{k}] (id {ann.get('id')}) has category_id {category_id!r}, "
                f"expected one of the ids in 'categories' {sorted(column_of)}")
        rows.append(row_of[image_id])
        columns.append(column_of[category_id])
        is_crowd.append(bool(ann.get("iscrowd", 0)))
    return np.array(rows, np.int64), np.array(columns, np.int64), np.array(is_crowd, bool)
