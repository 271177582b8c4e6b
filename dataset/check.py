"""Check a label file and every image it names before training, not in the middle of an epoch.

    python -m dataset.check data/train.csv
    python -m dataset.check data/train.txt --classes @classes.txt --workers 16 --keep-notes

Every row is checked and every image fully decoded (in parallel threads: PIL releases the GIL
while decoding, and threads avoid the pipe failures of process pools). Each problem is one line
`<label file>:<line>: <image>: <what is wrong>`. Three files are written beside the label file
(or in `--output-dir`), never touching it:

    <stem>.clean.csv   the label file without the faulty rows (sparse for a sparse input)
    <stem>.check.json  the report
    <stem>.check.txt   the report, one line per problem

Exit status: 0 when no row is faulty, 1 when some are, 2 when the file cannot be checked at all.
"""

import argparse
import concurrent.futures
import contextlib
import csv
import dataclasses
import io
import json
import os
import sys

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError
from tqdm import tqdm

from dataset.arguments import class_list
from dataset.labels import (
    LabelFileError,
    is_sparse_file,
    parse_sparse_row,
    paths_relative_to,
    read_label_text,
    sparse_rows,
    write_labels_csv,
)
from dataset.sparse_labels import write_sparse_rows
from utils.atomic import write_text

FAULT = "fault"  # the row is left out of the clean file
NOTE = "note"  # reported; left out of the clean file too unless strict=False

# What tf.io.decode_image (TF 2.21, channels=3) does with each kind of file, checked against
# PIL's decoding of the same bytes:
#   JPEG: RGB, grey and CMYK (Adobe, inverted) all decode to the right RGB.
#   PNG: 8-bit, palette (with or without transparency), grey+alpha and 16-bit grey or RGB all
#        decode right (16-bit is scaled to 8 bits); alpha is dropped, as PIL's convert("RGB") does.
#   GIF and WebP: right (first frame of an animation only when expand_animations=False).
#   BMP: RGB, RGBA and grey are right; palette BMP comes out as the palette *indices* read as grey
#        (wrong colours, silently) and 1-bit BMP fails.
#   TIFF and any other format: fails ("Unknown image file format").
# So only the last three are faults. CMYK JPEG and 16-bit grey PNG are notes: TF reads them, but a
# PIL-based loader may not (`convert("RGB")` clips 16-bit grey to white), and a file that one tool
# reads differently from another is a fault waiting for the next tool. By default (strict=True) the
# clean file leaves them out as well; strict=False keeps them.
TF_FORMATS = ("JPEG", "PNG", "GIF", "BMP", "WEBP")


@dataclasses.dataclass
class _Row:
    line: int
    name: str  # image path as written; "" when the row has none
    values: list  # parsed label values (sparse file: present and absent columns), None when malformed
    issues: list  # (kind, severity, message)


def inspect_image(path):
    """Fully decodes one image and says what is wrong with it for the TF pipeline.

    Run it under `_detect_truncation()`, or a truncated image may pass.

    Args:
        path: str. Image file.

    Returns:
        list[tuple[str, str, str]]. `(kind, severity, message)` per problem; empty when fine.
    """
    if not os.path.exists(path):
        return [("missing", FAULT, f"missing file (looked for {path})")]
    if not os.path.isfile(path):
        return [("missing", FAULT, f"not a file (looked for {path})")]
    if os.path.getsize(path) == 0:
        return [("empty", FAULT, "zero-byte file")]
    try:
        with Image.open(path) as image:
            image_format, mode = image.format, image.mode
            image.load()  # decodes every pixel: a truncated or corrupt file fails here
    except UnidentifiedImageError:
        return [("not_image", FAULT, "not an image (PIL cannot identify the file)")]
    except Image.DecompressionBombError as e:
        return [("too_large", FAULT, f"image too large to decode safely ({e})")]
    except Exception as e:  # noqa: BLE001  any decoder failure is a fault of this file, not of the checker
        kind = "truncated" if "truncated" in str(e).lower() else "corrupt"
        return [(kind, FAULT, f"{kind} image ({type(e).__name__}: {e})")]
    return _mode_issues(path, image_format, mode)


def _mode_issues(path, image_format, mode):
    if image_format not in TF_FORMATS:
        return [("format", FAULT, f"{image_format} file: tf.io.decode_image reads only JPEG, PNG, GIF, BMP, WebP")]
    if image_format == "BMP" and mode == "P":
        return [("mode", FAULT, "palette BMP: tf.io.decode_image returns the palette indices as grey")]
    if image_format == "BMP" and mode == "1":
        return [("mode", FAULT, "1-bit BMP: tf.io.decode_image cannot decode it")]
    if image_format == "JPEG" and mode == "CMYK":
        return [("mode", NOTE, "CMYK JPEG: TF decodes it correctly; a loader that does not convert CMYK would not")]
    if image_format == "PNG" and mode.startswith("I"):
        return [("mode", NOTE, f"16-bit grey PNG ({mode}): TF scales it correctly; PIL convert('RGB') clips it")]
    return []


@contextlib.contextmanager
def _detect_truncation():
    """PIL pads a truncated image silently when LOAD_TRUNCATED_IMAGES is set (some training code
    sets it); the check needs it off. It is a process-wide flag, restored afterwards."""
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def inspect_images(paths, workers=None, progress=True):
    """`inspect_image` on many files in a thread pool, with a progress bar.

    Args:
        paths: list[str]. Image files; repeats are decoded once.
        workers: int or None. Threads; None is Python's default, min(32, CPUs + 4).
        progress: bool. Show a tqdm bar.

    Returns:
        dict[str, list]. Path to its `(kind, severity, message)` problems (empty list when fine).
    """
    unique = list(dict.fromkeys(paths))
    with _detect_truncation(), concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(inspect_image, unique)
        found = list(tqdm(results, total=len(unique), desc="checking images", unit="img",
                          disable=not progress, mininterval=0.5))
    return dict(zip(unique, found))


def find_unreadable(paths, workers=None, strict=False):
    """Images the TF pipeline cannot use.

    Args:
        paths: list[str]. Image files.
        workers: int or None. Threads; None is Python's default.
        strict: bool. Also report notes (CMYK JPEG, 16-bit grey PNG).

    Returns:
        dict[str, str]. Path to the reason, for the bad ones only.
    """
    bad = {}
    for path, issues in inspect_images(paths, workers).items():
        reasons = [message for _, severity, message in issues if severity == FAULT or strict]
        if reasons:
            bad[path] = "; ".join(reasons)
    return bad


def check_label_file(path, class_names=None, image_root=None, groups=None, workers=None, output_dir=None,
                     strict=True):
    """Checks every row and image of a label file; writes the clean file and the report.

    Args:
        path: str. Label file (canonical `.csv`, or the text format).
        class_names: list[str] or None. Required for the text format; for a CSV, when given,
            the header must match it.
        image_root: str or None. Folder image paths are relative to; default the file's folder.
        groups: dict[str, int] or None. For a `groups` head: group name to number of classes.
        workers: int or None. Image-decoding threads; None is Python's default.
        output_dir: str or None. Where the three output files go; default beside `path`.
        strict: bool. Leave notes (CMYK JPEG, 16-bit grey PNG) out of the clean file too (default);
            False keeps them.

    Returns:
        dict. The report, as written to `<stem>.check.json`: `rows`, `clean_rows`,
        `faulty_rows` (line numbers), `issues` (one dict per problem), `warnings` (file level),
        `lines` (the one-line messages) and the output paths.
    """
    class_names, rows = _parse_rows(path, class_names, groups)
    root = image_root if image_root else os.path.dirname(os.path.abspath(path))
    resolved = {row.line: os.path.normpath(os.path.join(root, row.name)) for row in rows if row.name}
    _mark_duplicates(rows, resolved)
    checked = inspect_images(list(resolved.values()), workers)
    for row in rows:
        if row.name:
            row.issues.extend(checked[resolved[row.line]])
    excluded = {FAULT, NOTE} if strict else {FAULT}
    clean = [row for row in rows if not any(severity in excluded for _, severity, _ in row.issues)]
    return _write_outputs(path, class_names, groups, rows, clean, resolved, image_root, output_dir, strict)


def _parse_rows(path, class_names, groups):
    """Header (fatal when unusable) and every row, each with its own format problems."""
    if is_sparse_file(path):
        return _parse_sparse_rows(path, class_names, groups)
    text = read_label_text(path)
    if path.lower().endswith(".csv"):
        reader = csv.reader(io.StringIO(text))
        header = [h.strip() for h in next(reader)]
        if not header or header[0].lower() != "image" or len(header) < 2 or not all(header[1:]):
            raise LabelFileError(f"{path}:1: header must be 'image,<class 1>,...', found {header}")
        if class_names is not None and list(class_names) != header[1:]:
            raise LabelFileError(f"{path}:1: header classes {header[1:]} differ from class_names {list(class_names)}")
        class_names = header[1:]
        records = ((reader.line_num, cells) for cells in reader)
    else:
        if not class_names:
            raise LabelFileError(f"{path}: the text label format needs class_names")
        records = ((line, raw.split()) for line, raw in enumerate(text.splitlines(), start=1)
                   if not raw.lstrip().startswith("#"))
    if groups is not None and list(groups) != list(class_names):
        raise LabelFileError(f"{path}:1: columns {list(class_names)} differ from the groups {list(groups)}")
    allowed = [(-1, 0, 1)] * len(class_names) if groups is None else [
        tuple(range(-1, groups[name])) for name in class_names]
    rows = [_parse_row(line, cells, class_names, allowed) for line, cells in records
            if cells and any(c.strip() for c in cells)]
    return list(class_names), rows


def _parse_row(line, cells, class_names, allowed):
    row = _Row(line, cells[0].strip(), None, [])
    if not row.name:
        row.issues.append(("columns", FAULT, "empty image path"))
    if len(cells) != len(class_names) + 1:
        row.issues.append(("columns", FAULT, f"expected {len(class_names) + 1} columns "
                                             f"(image + {len(class_names)} classes), found {len(cells)}"))
        return row
    values, bad = [], []
    for name, cell, ok in zip(class_names, cells[1:], allowed):
        try:
            number = float(cell)
        except ValueError:
            number = float("nan")
        if number in ok:  # 1.0 in (1, 0, -1) holds; nan, 0.5 and 2 do not
            values.append(int(number))
        else:
            expected = "1, 0 or -1" if ok == (-1, 0, 1) else f"an integer from -1 to {ok[-1]}"
            bad.append(f"column {name!r} has {cell.strip()!r}, expected {expected}")
    if bad:
        row.issues.append(("value", FAULT, "; ".join(bad)))
    elif row.name:
        row.values = values
    return row


def _parse_sparse_rows(path, class_names, groups):
    """`_parse_rows` for a sparse label file: each row's values are (present columns, absent columns)."""
    if groups is not None:
        raise LabelFileError(f"{path}:1: a groups head needs the dense CSV (class indices per group)")
    with sparse_rows(path) as (found, records):
        if class_names is not None and list(class_names) != found:
            raise LabelFileError(f"{path}:1: classes {found} differ from class_names {list(class_names)}")
        column_of = {name: j for j, name in enumerate(found)}
        rows = []
        for line, cells in records:
            try:
                name, present, absent = parse_sparse_row(path, line, cells, column_of)
            except LabelFileError as error:
                message = str(error).removeprefix(f"{path}:{line}: ")
                kind = "columns" if "column" in message or "image path" in message else "value"
                rows.append(_Row(line, cells[0].strip(), None, [(kind, FAULT, message)]))
                continue
            rows.append(_Row(line, name, (sorted(present), sorted(absent)), []))
    return found, rows


def _mark_duplicates(rows, resolved):
    """A later well-formed row naming the same image as an earlier one is a fault."""
    first_line = {}
    for row in rows:
        if row.values is None:
            continue
        key = os.path.normcase(resolved[row.line])
        if key in first_line:
            row.issues.append(("duplicate", FAULT, f"duplicate of line {first_line[key]}"))
        else:
            first_line[key] = row.line


def _write_outputs(path, class_names, groups, rows, clean, resolved, image_root, output_dir, strict):
    stem = os.path.splitext(os.path.basename(path))[0]
    folder = output_dir or os.path.dirname(os.path.abspath(path))
    outputs = {kind: os.path.join(folder, f"{stem}.{kind}") for kind in ("clean.csv", "check.json", "check.txt")}
    names = [row.name for row in clean]
    if not image_root and os.path.abspath(folder) != os.path.dirname(os.path.abspath(path)):
        names = paths_relative_to(outputs["clean.csv"], [resolved[row.line] for row in clean])
    warnings = [f"{path}: warning: {w}" for w in _write_clean(path, outputs["clean.csv"], names, class_names,
                                                                clean, groups)]
    issues = [{"line": row.line, "image": row.name, "kind": kind, "severity": severity, "message": message}
              for row in rows for kind, severity, message in row.issues]
    lines = [f"{path}:{i['line']}: {i['image'] or '<no image>'}: {i['severity']}: {i['message']}" for i in issues]
    report = {
        "label_file": path, "class_names": class_names, "strict": strict,
        "rows": len(rows), "clean_rows": len(clean),
        "faulty_rows": sorted({row.line for row in rows} - {row.line for row in clean}),
        "issues": issues, "warnings": warnings, "lines": lines,
        "clean_file": outputs["clean.csv"], "report_json": outputs["check.json"], "report_txt": outputs["check.txt"],
    }
    summary = (f"{path}: {len(rows)} rows, {len(rows) - len(clean)} faulty, {len(clean)} written to "
               f"{outputs['clean.csv']}")
    write_text(outputs["check.json"], json.dumps(report, indent=1) + "\n")
    write_text(outputs["check.txt"], "\n".join([summary, *lines, *warnings]) + "\n")
    return report


def _write_clean(path, out, names, class_names, clean, groups):
    """Writes the clean rows in the label file's format; returns the problems of the clean table as a whole."""
    if is_sparse_file(path):  # no dense table of a sparse file
        write_sparse_rows(out, class_names, ((name, *row.values) for name, row in zip(names, clean)))
        positives = np.bincount([j for row in clean for j in row.values[0]], minlength=len(class_names))
        return _unused_classes(class_names, positives)
    labels = np.array([row.values for row in clean], np.int32).reshape(len(clean), len(class_names))
    write_labels_csv(out, names, class_names, labels)
    if groups is None:
        return _unused_classes(class_names, (labels == 1).sum(axis=0))
    return [f"group {name!r} never uses class index {k} in the clean rows"
            for j, name in enumerate(class_names) for k in range(groups[name]) if not np.any(labels[:, j] == k)]


def _unused_classes(class_names, positives):
    return [f"class {name!r} has no positive image in the clean rows" for name, n in zip(class_names, positives)
            if n == 0]


def _groups(value):
    """`color=3,shape=4` to {'color': 3, 'shape': 4}."""
    try:
        return {name.strip(): int(k) for name, k in (item.split("=") for item in value.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected name=K,name=K, got {value!r}") from None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dataset.check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("label_file", help="canonical .csv or text label file")
    parser.add_argument("--classes", type=class_list, default=None,
                        help="class names a,b,c or @file (required for the text format)")
    parser.add_argument("--image-root", default=None, help="folder image paths are relative to "
                                                           "(default: the label file's folder)")
    parser.add_argument("--groups", type=_groups, default=None, help="groups head: name=K,name=K")
    parser.add_argument("--workers", type=int, default=None, help="decoding threads (default: min(32, CPUs + 4))")
    parser.add_argument("--output-dir", default=None, help="folder for the outputs (default: beside the label file)")
    parser.add_argument("--keep-notes", action="store_true",
                        help="keep images TF reads right but PIL-based loaders may not (CMYK JPEG, 16-bit grey PNG) "
                             "in the clean file (default: left out)")
    args = parser.parse_args(argv)
    try:
        report = check_label_file(args.label_file, args.classes, args.image_root, args.groups, args.workers,
                                  args.output_dir, strict=not args.keep_notes)
    except (LabelFileError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for line in report["lines"] + report["warnings"]:
        print(line)
    print(f"{report['rows']} rows, {len(report['faulty_rows'])} faulty; clean file: {report['clean_file']}; "
          f"report: {report['report_txt']}")
    return 1 if report["faulty_rows"] else 0


if __name__ == "__main__":
    sys.exit(main())
