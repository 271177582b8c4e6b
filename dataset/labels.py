"""Label files: the canonical CSV, its sparse form for many classes, and the original text format.

Canonical (dense) CSV:

    image,cat,dog,car
    photos/001.jpg,1,0,-1

one row per image; `1` present, `0` absent, `-1` unknown (ignored by losses and metrics). For a
`groups` head the columns are attribute groups and each value is a class index in that group or
`-1`. Image paths are relative to the label file's folder unless `image_root` is given.

Sparse CSV (`*.sparse.csv` by convention; told apart by its first line, whatever its name):

    # classes: cat;dog;car
    image,present,absent
    photos/001.jpg,cat,dog
    photos/002.jpg,,cat;car

line 1 names the classes in column order, separated by `;`; line 2 is the header; then one row per
image with the classes verified present and those verified absent, each `;`-separated; every class
a row does not name is unknown (`-1`). It holds what a dense file holds (not the class indices of a
`groups` head) in the size of the known labels: Open Images' 1.7 M images x 9,605 classes are
over 30 GB as a dense CSV, about 0.2 GB sparse at ~9 known labels an image. The class list is the
file's own first line rather than the `class_names` setting or a companion file: the order of the
columns is written once, beside the rows that use it, and a copy, split or clean of the file
cannot lose it or pair it with another list. Class names may not hold `;` or line breaks. Each
image's known labels are names on its own line, so `grep Tortoise train.sparse.csv` lists the
images that name a class. `read_labels` returns the same `LabelTable` as for the dense file, with
the same checks, one line naming file and line each, and refuses a repeated image (the rows of one
image are not merged). The labels are dense in memory for now (int32 [images, classes]: 1.7 M x
9,605 would be 65 GB; holding them sparse is a later step). `dataset/sparse_labels.py` writes the
format and converts a file either way.

Text format (the original project's): `relative/path.jpg v1 v2 ... vC`, separated by spaces, the
class names coming from the config.
"""

import collections
import contextlib
import csv
import dataclasses
import difflib
import io
import os
from array import array

import numpy as np

from utils.atomic import write_text

SPARSE_MARK = "# classes:"  # the first line of a sparse label file starts so
SPARSE_HEADER = ["image", "present", "absent"]  # its second line
NAME_SEPARATOR = ";"  # between the class names of the first line and of a cell


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
    """Reads a label file: a `.csv` is the canonical CSV or its sparse form, anything else the text format.

    Args:
        path: str. The label file.
        class_names: list[str] or None. Required for the text format; for a CSV, when given, the
            header (the sparse file's classes line) must match it.
        image_root: str or None. Folder that image paths are relative to; default the label
            file's folder.
        groups: dict[str, int] or None. For a `groups` head: group name to number of classes;
            values must then be class indices in `[-1, K-1]` instead of `{1, 0, -1}` (dense only).

    Returns:
        LabelTable.
    """
    if is_sparse_file(path):
        if groups is not None:
            raise LabelFileError(f"{path}:1: a groups head needs a class index per group, which the sparse "
                                 "format cannot hold (1 / 0 / -1 only); write the dense CSV")
        header, names, lines, labels = _read_sparse(path)
    else:
        header, names, lines, labels = _read_dense(path, class_names, groups)
    if class_names is not None and list(class_names) != header:
        raise LabelFileError(
            f"{path}:1: header classes {header} differ from the configured class_names {list(class_names)}")
    root = image_root if image_root else os.path.dirname(os.path.abspath(path))
    return LabelTable(
        images=[os.path.normpath(os.path.join(root, name)) for name in names],
        names=names,
        class_names=list(header),
        labels=labels,
        lines=lines,
        source=path,
    )


def is_sparse_file(path):
    """Whether `path` is a sparse label file: a `.csv` whose first line starts with `# classes:`."""
    if not path.lower().endswith(".csv") or not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8-sig") as f:
        return f.read(len(SPARSE_MARK)) == SPARSE_MARK


def _read_dense(path, class_names, groups):
    """(class names, image names, lines, labels) of a canonical CSV or a text label file."""
    text = read_label_text(path)
    if path.lower().endswith(".csv"):
        class_names, rows = _parse_csv(path, text)
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
    return list(class_names), [name for _, name, _ in rows], [line for line, _, _ in rows], labels


def _read_sparse(path):
    """(class names, image names, lines, labels) of a sparse label file, read one row at a time."""
    names, lines, first_line = [], [], {}
    rows, columns, values = array("i"), array("i"), array("b")  # the known entries
    with sparse_rows(path) as (class_names, records):
        column_of = {name: j for j, name in enumerate(class_names)}
        for line, cells in records:
            name, present, absent = parse_sparse_row(path, line, cells, column_of)
            key = os.path.normpath(name)
            if key in first_line:
                raise LabelFileError(f"{path}:{line}: image {name!r} repeats line {first_line[key]}; a sparse "
                                     "file has one row per image")
            first_line[key] = line
            for found, value in ((present, 1), (absent, 0)):
                rows.extend([len(names)] * len(found))
                columns.extend(sorted(found))
                values.extend([value] * len(found))
            names.append(name)
            lines.append(line)
    if not names:
        raise LabelFileError(f"{path}: label file has a header but no rows")
    labels = np.full((len(names), len(class_names)), -1, np.int32)
    labels[np.frombuffer(rows, np.int32), np.frombuffer(columns, np.int32)] = np.frombuffer(values, np.int8)
    return class_names, names, lines, labels


@contextlib.contextmanager
def sparse_rows(path):
    """Opens a sparse label file: yields (class names, iterator of (line, cells) of its non-blank rows).

    The classes line and the header are checked here; each row's cells are left to
    `parse_sparse_row`, so a reader may stop at the first bad row or list them all.
    """
    with open(path, encoding="utf-8-sig", newline="") as f:
        class_names = _sparse_classes(path, f.readline().rstrip("\r\n"))
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header != SPARSE_HEADER:
            raise LabelFileError(f"{path}:2: expected the header {','.join(SPARSE_HEADER)!r} below the "
                                 f"classes line, found {header}")
        # reader.line_num + 1: the classes line was read before the reader started
        yield class_names, ((reader.line_num + 1, cells) for cells in reader
                            if cells and any(c.strip() for c in cells))


def _sparse_classes(path, first_line):
    """The class names of a sparse file's first line `# classes: a;b;c`."""
    classes = [name.strip() for name in first_line[len(SPARSE_MARK):].split(NAME_SEPARATOR)]
    if classes == [""]:
        raise LabelFileError(f"{path}:1: the classes line names no classes")
    if any(not name for name in classes):
        raise LabelFileError(f"{path}:1: the classes line has an empty class name (two ';' in a row?)")
    duplicates = sorted({name for name, n in collections.Counter(classes).items() if n > 1})
    if duplicates:
        raise LabelFileError(f"{path}:1: the classes line repeats class names {duplicates}")
    return classes


def parse_sparse_row(path, line, cells, column_of):
    """(image name, set of present columns, set of absent columns) of one row of a sparse file.

    Args:
        path: str. The file, for the message.
        line: int. The row's line, for the message.
        cells: list[str]. The row's CSV cells.
        column_of: dict[str, int]. Class name to column.

    Raises:
        LabelFileError: `<path>:<line>: <what is wrong>`.
    """
    if len(cells) != len(SPARSE_HEADER):
        raise LabelFileError(f"{path}:{line}: expected 3 columns (image, present, absent), found {len(cells)}")
    name = cells[0].strip()
    if not name:
        raise LabelFileError(f"{path}:{line}: empty image path")
    present, absent = (_sparse_cell(path, line, cell, column_of) for cell in cells[1:])
    both = present & absent
    if both:
        names = list(column_of)
        raise LabelFileError(f"{path}:{line}: classes {sorted(names[j] for j in both)} are both present and absent")
    return name, present, absent


def _sparse_cell(path, line, cell, column_of):
    """The columns of the class names in one cell of a sparse row."""
    columns = set()
    for name in cell.split(NAME_SEPARATOR):
        name = name.strip()
        if not name:
            continue
        if name not in column_of:
            close = difflib.get_close_matches(name, column_of, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise LabelFileError(f"{path}:{line}: class {name!r} is not in the classes of line 1{hint}")
        columns.add(column_of[name])
    return columns


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


def paths_relative_to(out_csv, paths):
    """Image paths as the CSV at `out_csv` should hold them.

    Relative to the CSV's folder, so `read_labels` resolves them with no `image_root`; absolute
    only where no relative path exists (another drive on Windows).

    Args:
        out_csv: str. The CSV that will hold the paths.
        paths: list[str]. Image paths, absolute or relative to the working directory.

    Returns:
        list[str]. One path per input, with `/` separators so the file works on every OS.
    """
    folder = os.path.dirname(os.path.abspath(out_csv))
    by_dir = {}  # relpath is slow; images share few folders, so convert each folder once
    out = []
    for path in paths:
        directory, base = os.path.split(os.path.abspath(path))
        if directory not in by_dir:
            try:
                by_dir[directory] = os.path.relpath(directory, folder)
            except ValueError:
                by_dir[directory] = directory
        relative = os.path.join(by_dir[directory], base) if by_dir[directory] != "." else base
        out.append(relative.replace(os.sep, "/"))
    return out


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
