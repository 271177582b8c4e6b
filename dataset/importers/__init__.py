"""Importers: other label formats to the canonical label CSV (see `dataset/labels.py`).

Each format has its own module (`coco`, `voc`, `names_csv`, `text`, `openimages`), named in
`IMPORTERS`, with one `import_*` function that reads the source, then calls
`canonical_csv.write_imported`, which every importer shares: it writes the CSV atomically with image
paths relative to the CSV's folder, prints a summary and returns the table that `read_labels` would
give for the new file. `openimages` is the exception: its millions of images and thousands of
classes go to the sparse format, streamed row by row (`sparse_labels.write_sparse_rows`). Each
module also has `HELP`, the format in one line, and `add_arguments(parser)`, its command-line
options (`python -m dataset.importers.cli`), named like its function's arguments.
"""

import importlib

# import_format -> (module, function); imported on use, so each format pulls in only what it needs.
IMPORTERS = {
    "coco": ("dataset.importers.coco", "import_coco"),
    "voc": ("dataset.importers.voc", "import_voc"),
    "names": ("dataset.importers.names_csv", "import_names_csv"),
    "text": ("dataset.importers.text", "import_text"),
    "openimages": ("dataset.importers.openimages", "import_openimages"),
}


def importer_module(import_format):
    """The module of a format in `IMPORTERS`, imported now.

    Args:
        import_format: str. A key of `IMPORTERS`.
    """
    if import_format not in IMPORTERS:
        raise ValueError(f"import_format must be one of {sorted(IMPORTERS)}. Received: import_format={import_format!r}")
    return importlib.import_module(IMPORTERS[import_format][0])


def load_importer(import_format):
    """The `import_*(source, out_csv, **options)` function of a format in `IMPORTERS`.

    Args:
        import_format: str. A key of `IMPORTERS`.
    """
    return getattr(importer_module(import_format), IMPORTERS[import_format][1])
