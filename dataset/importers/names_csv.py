"""A "names" CSV (one column of image names, one of label names) to the canonical label CSV.

The Kaggle style, as in Planet's `train_v2.csv`:

    image_name,tags
    train_0,haze primary
    train_1,agriculture clear primary water

Label names in a cell are split on `delimiter`; an empty cell is an image with no label. Rows
naming the same image are merged, so one-row-per-label files (`img1.jpg,cat` / `img1.jpg,dog`)
work too.
"""

import csv
import os

import numpy as np
from tqdm import tqdm

from dataset.arguments import class_list
from dataset.importers.canonical_csv import write_imported
from dataset.labels import LabelFileError, paths_relative_to

HELP = "CSV of image names and delimited label names (Kaggle/Planet style)"


def add_arguments(parser):
    """The command-line options of `import_names_csv`, named like its arguments."""
    parser.add_argument("source", help="CSV with a header, an image column and a column of label names")
    parser.add_argument("--delimiter", default=" ", help="separator between label names in a cell (default: space)")
    parser.add_argument("--classes", dest="class_names", metavar="CLASSES", type=class_list, default=None,
                        help="class names a,b,c or @file, in column order (default: found in the file, sorted)")
    parser.add_argument("--image-root", default=None, help="folder the image names are relative to "
                                                           "(default: the source file's folder)")
    parser.add_argument("--image-suffix", default="", help="appended to each image name, e.g. .jpg")
    parser.add_argument("--image-column", default=None, help="header of the image column (default: first)")
    parser.add_argument("--labels-column", default=None, help="header of the labels column (default: second)")


def import_names_csv(path, out_csv, delimiter=" ", class_names=None, image_root=None, image_suffix="",
                     image_column=None, labels_column=None):
    """Imports a names CSV.

    Args:
        path: str. The names CSV; its first line is a header.
        out_csv: str. Output canonical CSV.
        delimiter: str. Separator between label names inside the labels cell.
        class_names: list[str] or None. Columns, in order; another name in the file is an
            error. None takes the names found, sorted.
        image_root: str or None. Folder the image names are relative to; default the names
            CSV's folder.
        image_suffix: str. Appended to every image name (Planet lists `train_0`, the file is
            `train_0.jpg`).
        image_column: str or None. Header of the image column; default the first column.
        labels_column: str or None. Header of the labels column; default the second column.

    Returns:
        LabelTable. The written table.
    """
    images, lines, label_sets = _read_rows(path, delimiter, image_column, labels_column)
    found = sorted(set().union(*label_sets))
    if class_names is None:
        class_names = found
    column_of = {name: j for j, name in enumerate(class_names)}
    labels = np.zeros((len(images), len(class_names)), np.int32)
    for i, names in enumerate(label_sets):
        unknown = sorted(names - set(column_of))
        if unknown:
            raise LabelFileError(
                f"{path}:{lines[i]}: label names {unknown} are not in the given class_names {list(class_names)}")
        labels[i, [column_of[name] for name in names]] = 1
    root = image_root if image_root else os.path.dirname(os.path.abspath(path))
    paths = [os.path.join(root, name + image_suffix) for name in images]
    return write_imported(out_csv, paths_relative_to(out_csv, paths), class_names, labels, path)


def _read_rows(path, delimiter, image_column, labels_column):
    """Image names in file order, the line each first appears on, and each image's label set."""
    if not os.path.isfile(path):
        raise LabelFileError(f"{path}: names CSV not found")
    images, lines, label_sets, index_of = [], [], [], {}
    with open(path, encoding="utf-8-sig", newline="") as f:  # utf-8-sig: spreadsheets add a BOM
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        image_at = _column(path, header, image_column, 0)
        labels_at = _column(path, header, labels_column, 1)
        for cells in tqdm(reader, desc="rows", unit="row", mininterval=0.5):
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise LabelFileError(
                    f"{path}:{reader.line_num}: expected {len(header)} columns like the header, found {len(cells)}")
            name = cells[image_at].strip()
            if not name:
                raise LabelFileError(f"{path}:{reader.line_num}: empty image name")
            if name not in index_of:
                index_of[name] = len(images)
                images.append(name)
                lines.append(reader.line_num)
                label_sets.append(set())
            label_sets[index_of[name]] |= {n.strip() for n in cells[labels_at].split(delimiter) if n.strip()}
    return images, lines, label_sets


def _column(path, header, name, default):
    if len(header) < 2:
        raise LabelFileError(f"{path}:1: expected a header with an image column and a labels column, found {header}")
    if name is None:
        return default
    if name not in header:
        raise LabelFileError(f"{path}:1: no column {name!r}; the header has {header}")
    return header.index(name)
