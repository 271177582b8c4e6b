"""Label files: the canonical CSV and the original space-separated text format.

Canonical CSV:

    image,cat,dog,car
    photos/001.jpg,1,0,-1

one row per image; `1` present, `0` absent, `-1` unknown (ignored by losses and metrics). For a
`groups` head the columns are attribute groups and each value is a class index in that group or
`-1`. Image paths are relative to the label file's folder unless `image_root` is given.

Text format (the original project's): `relative/path.jpg v1 v2 ... vC`, separated by spaces, the
class names coming from the config.
"""

import csv
import dataclasses
import io
import os

import numpy as np

from utils.atomic import write_text


class LabelFileError(ValueError):
    """A label file that cannot be used; the message names the file and line."""


@dataclasses.dataclass
class LabelTable:
    """The contents of one label file.

    Args:
        images: list[str]. Resolved image paths, one per row.
        names: list[str]. Image paths exactly as written in the file.
        class_names: list[str]. One name per label column.
        labels: np.ndarray. int32 array [rows, columns] of label values.
        lines: list[int]. The file line of each row, for error messages.
        source: str. The label file.
    """

    images: list
    names: list
    class_names: list
    labels: np.ndarray
    lines: list
    source: str

    def __len__(self):
        return len(self.images)


def read_labels(path, class_names=None, image_root=None, groups=None):
    """Reads a label file (`.csv` canonical, anything else the text format).

    Args:
        path: str. The label file.
        class_names: list[str] or None. Required for the text format; for a CSV, when given, the
            header must match it.
        image_root: str or None. Folder that image paths are relative to; default the label
            file's folder.
        groups: dict[str, int] or None. For a `groups` head: group name to number of classes;
            values must then be class indices in `[-1, K-1]` instead of `{1, 0, -1}`.

    Returns:
        LabelTable.
    """
    text = read_label_text(path)
    if path.lower().endswith(".csv"):
        header, rows = _parse_csv(path, text)
        if class_names is not None and list(class_names) != header:
            raise LabelFileError(
                f"{path}:1: header classes {header} differ from the configured class_names {list(class_names)}")
        class_names = header
    else:
        if not class_names:
            raise LabelFileError(f"{path}: the text label format needs class_names in the config")
        rows = _parse_text(path, text, len(class_names))
    if groups is not None and list(groups) != list(class_names):
        raise LabelFileError(f"{path}:1: columns {list(class_names)} differ from the groups {list(groups)}")
    if not rows:
        raise LabelFileError(f"{path}: label file has a header but no rows")
    allowed = _allowed_values(class_names, groups)
    labels = np.zeros((len(rows), len(class_names)), np.int32)
    for i, (line, _, values) in enumerate(rows):
        for j, value in enumerate(values):
            labels[i, j] = _parse_value(path, line, class_names[j], value, allowed[j])
    root = image_root if image_root else os.path.dirname(os.path.abspath(path))
    names = [name for _, name, _ in rows]
    return LabelTable(
        images=[os.path.normpath(os.path.join(root, name)) for name in names],
        names=names,
        class_names=list(class_names),
        labels=labels,
        lines=[line for line, _, _ in rows],
        source=path,
    )


def read_label_text(path):
    """The text of a label file; LabelFileError when it is missing or empty."""
    if not os.path.isfile(path):
        raise LabelFileError(f"{path}: label file not found")
    with open(path, encoding="utf-8-sig") as f:  # utf-8-sig: spreadsheets often add a BOM
        text = f.read()
    if not text.strip():
        raise LabelFileError(f"{path}: label file is empty")
    return text


def write_labels_csv(path, names, class_names, labels):
    """Writes a canonical label CSV atomically (a kill never leaves half a file).

    Args:
        path: str. Output file.
        names: list[str]. Image paths as they should appear in the file.
        class_names: list[str]. Column names.
        labels: array-like. [rows, columns] of integer label values.
    """
    labels = np.asarray(labels)
    if labels.shape != (len(names), len(class_names)):
        raise ValueError(
            f"labels shape {labels.shape} does not match {len(names)} images x {len(class_names)} classes")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["image", *class_names])
    for name, row in zip(names, labels):
        writer.writerow([name, *(int(v) for v in row)])
    write_text(path, out.getvalue())


def _parse_csv(path, text):
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    header = [h.strip() for h in header]
    if not header or header[0].lower() != "image":
        raise LabelFileError(f"{path}:1: header must start with 'image', found {header[:1]}")
    classes = header[1:]
    if not classes:
        raise LabelFileError(f"{path}:1: header names no classes after 'image'")
    if any(not c for c in classes):
        raise LabelFileError(f"{path}:1: header has an empty class name")
    duplicates = sorted({c for c in classes if classes.count(c) > 1})
    if duplicates:
        raise LabelFileError(f"{path}:1: header repeats class names {duplicates}")
    rows = []
    for cells in reader:
        line = reader.line_num
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise LabelFileError(
                f"{path}:{line}: expected {len(header)} columns (image + {len(classes)} classes), found {len(cells)}")
        name = cells[0].strip()
        if not name:
            raise LabelFileError(f"{path}:{line}: empty image path")
        rows.append((line, name, [c.strip() for c in cells[1:]]))
    return classes, rows


def _parse_text(path, text, num_classes):
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        tokens = raw.split()
        if len(tokens) != num_classes + 1:
            raise LabelFileError(
                f"{path}:{line}: expected an image path and {num_classes} values, found {len(tokens)} fields")
        rows.append((line, tokens[0], tokens[1:]))
    return rows


def _allowed_values(class_names, groups):
    if groups is None:
        return [(-1, 0, 1)] * len(class_names)
    return [tuple(range(-1, groups[name])) for name in class_names]


def _parse_value(path, line, column, value, allowed):
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or number != int(number) or int(number) not in allowed:
        shown = "{1, 0, -1}" if allowed == (-1, 0, 1) else f"an integer from -1 to {allowed[-1]}"
        raise LabelFileError(f"{path}:{line}: column {column!r} has value {value!r}; expected {shown}")
    return int(number)
