"""What the command lines of the data tools share (`python -m dataset.check` and the others)."""

import argparse
import sys

from dataset.labels import LabelFileError


def class_list(value):
    """`a,b,c` or `@file` (one name per line) to a list of class names."""
    if value.startswith("@"):
        with open(value[1:], encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    else:
        names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"no class names in {value!r}")
    return names


def run_tool(function, *args, **kwargs):
    """Calls a data tool's function for its command line.

    Returns:
        (result, exit status): (the function's result, 0), or (None, 2) after printing the error
        (a bad label file, value or path) as one line on stderr.
    """
    try:
        return function(*args, **kwargs), 0
    except (LabelFileError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return None, 2
