"""Writes the sparse label format (described in `dataset/labels.py`) and converts a label file either way.

    python -m dataset.sparse_labels to-sparse data/train.csv          # writes data/train.sparse.csv
    python -m dataset.sparse_labels to-dense data/train.sparse.csv    # writes data/train.csv
    python -m dataset.sparse_labels to-dense data/train.sparse.csv -o data/dense/train.csv

Every mode reads both formats (`dataset.labels.read_labels` tells them apart by the first line), so
a conversion is needed only for another tool, or to read a file as a spreadsheet. An existing
output is never overwritten, and the input is never touched: nothing a user had is lost. Image
paths are copied as written when the output goes beside the input, and made relative to the
output's folder otherwise.
"""

import argparse
import csv
import os
import sys

import numpy as np

from dataset.arguments import class_list, run_tool
from dataset.labels import (
    NAME_SEPARATOR,
    SPARSE_HEADER,
    SPARSE_MARK,
    LabelFileError,
    is_sparse_file,
    paths_relative_to,
    read_labels,
    write_labels_csv,
)
from utils.atomic import atomic_path

SPARSE_SUFFIX = ".sparse.csv"  # the name the tools give a sparse file; read_labels goes by its first line


def write_labels_sparse(path, names, class_names, labels):
    """Writes a dense table as a sparse label file, atomically.

    Args:
        path: str. Output file (`*.sparse.csv` by convention).
        names: list[str]. Image paths as they should appear in the file; no image twice.
        class_names: list[str]. Class names, in column order; none holding `;` or a line break.
        labels: array-like. [rows, columns] of 1 / 0 / -1.
    """
    labels = np.asarray(labels)
    if labels.shape != (len(names), len(class_names)):
        raise ValueError(
            f"labels shape {labels.shape} does not match {len(names)} images x {len(class_names)} classes")
    other = sorted(set(np.unique(labels).tolist()) - {-1, 0, 1})
    if other:
        raise ValueError(f"labels hold the values {other}; the sparse format holds 1, 0 and -1 only")
    write_sparse_rows(path, class_names, ((name, np.flatnonzero(row == 1), np.flatnonzero(row == 0))
                                          for name, row in zip(names, labels)))


def write_sparse_rows(path, class_names, rows):
    """Writes a sparse label file atomically, one row at a time: no dense table is ever needed.

    Args:
        path: str. Output file.
        class_names: list[str]. Class names, in column order.
        rows: iterable of (str, iterable of int, iterable of int). Per image: its path as it goes
            in the file, the columns of its classes present and of its classes absent.

    Returns:
        int. The number of rows written.
    """
    for name in class_names:
        if not name or name != name.strip() or any(c in name for c in (NAME_SEPARATOR, "\n", "\r")):
            raise ValueError(f"class name {name!r} cannot go in a sparse label file: it is empty, starts or ends "
                             "with a space, or holds ';' (the separator between names) or a line break")
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class names repeat: {sorted({c for c in class_names if class_names.count(c) > 1})}")
    seen = set()
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(f"{SPARSE_MARK} {NAME_SEPARATOR.join(class_names)}\n")
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(SPARSE_HEADER)
        for name, present, absent in rows:
            key = os.path.normpath(name)
            if key in seen:
                raise ValueError(f"image {name!r} comes twice; a sparse label file has one row per image")
            seen.add(key)
            writer.writerow([name, *(NAME_SEPARATOR.join(class_names[j] for j in columns)
                                     for columns in (present, absent))])
    return len(seen)


def to_sparse(path, output=None, class_names=None):
    """Writes the sparse form of a dense label file (canonical CSV, or the text format with `class_names`).

    Args:
        path: str. The dense label file; not changed.
        output: str or None. The sparse file; default `<stem>.sparse.csv` beside `path`. Never overwritten.
        class_names: list[str] or None. For the text format.

    Returns:
        str. The file written.
    """
    if is_sparse_file(path):
        raise LabelFileError(f"{path}: already in the sparse format")
    output = output or f"{os.path.splitext(path)[0]}{SPARSE_SUFFIX}"
    _refuse_existing(output)
    table = read_labels(path, class_names=class_names)
    _refuse_repeats(table)
    write_labels_sparse(output, _names_for(output, table), table.class_names, table.labels)
    print(_summary(table, output))
    return output


def to_dense(path, output=None):
    """Writes the canonical (dense) CSV of a sparse label file.

    Args:
        path: str. The sparse label file; not changed.
        output: str or None. The dense CSV; default `<stem>.csv` for `<stem>.sparse.csv`, else
            `<stem>.dense.csv`, beside `path`. Never overwritten.

    Returns:
        str. The file written.
    """
    if not is_sparse_file(path):
        raise LabelFileError(f"{path}: not a sparse label file (its first line does not start with {SPARSE_MARK!r})")
    if output is None:
        stem = path[:-len(SPARSE_SUFFIX)] if path.lower().endswith(SPARSE_SUFFIX) else os.path.splitext(path)[0]
        output = f"{stem}.csv" if path.lower().endswith(SPARSE_SUFFIX) else f"{stem}.dense.csv"
    _refuse_existing(output)
    table = read_labels(path)
    write_labels_csv(output, _names_for(output, table), table.class_names, table.labels)
    print(_summary(table, output))
    return output


def _refuse_existing(output):
    if os.path.exists(output):
        raise LabelFileError(f"{output}: already exists; remove it or name another output with -o")


def _refuse_repeats(table):
    """A dense file may name an image twice (mode=check drops the repeat); a sparse file may not."""
    first_line = {}
    for name, line in zip(table.names, table.lines):
        key = os.path.normpath(name)
        if key in first_line:
            raise LabelFileError(f"{table.source}:{line}: image {name!r} repeats line {first_line[key]}; a sparse "
                                 "file has one row per image (python -m dataset.check writes a copy without repeats)")
        first_line[key] = line


def _names_for(output, table):
    """Image paths for `output`: as written beside the input, relative to the new folder elsewhere."""
    if os.path.dirname(os.path.abspath(output)) == os.path.dirname(os.path.abspath(table.source)):
        return table.names
    return paths_relative_to(output, table.images)


def _summary(table, output):
    counts = {value: int((table.labels == value).sum()) for value in (1, 0, -1)}
    return (f"{table.source} -> {output}: {len(table)} images, {len(table.class_names)} classes; labels "
            f"{counts[1]} present, {counts[0]} absent, {counts[-1]} unknown; "
            f"{os.path.getsize(table.source):,} -> {os.path.getsize(output):,} bytes")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dataset.sparse_labels", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    sparse = commands.add_parser("to-sparse", help="dense label file -> sparse (<stem>.sparse.csv)")
    sparse.add_argument("label_file", help="canonical .csv, or the text format with --classes")
    sparse.add_argument("--classes", type=class_list, default=None, help="class names a,b,c or @file (text format)")
    dense = commands.add_parser("to-dense", help="sparse label file -> canonical CSV (<stem>.csv)")
    dense.add_argument("label_file", help="sparse label file")
    for sub in (sparse, dense):
        sub.add_argument("-o", "--output", default=None, help="output file (never overwritten)")
    args = parser.parse_args(argv)
    if args.command == "to-sparse":
        return run_tool(to_sparse, args.label_file, args.output, args.classes)[1]
    return run_tool(to_dense, args.label_file, args.output)[1]


if __name__ == "__main__":
    sys.exit(main())
