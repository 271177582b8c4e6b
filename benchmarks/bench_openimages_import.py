"""Times the Open Images importer, and its peak memory, on a synthetic file in Open Images' format.

    python -m benchmarks.bench_openimages_import                     # 300 k images x 10 rows, 9,605 classes
    python -m benchmarks.bench_openimages_import --images 1700000     # the size of the V6 train set

The fake files (`ImageID,Source,LabelName,Confidence` rows, 60 % verified present, rows shuffled in
blocks so images are not contiguous, and a `LabelName,DisplayName` file) are generated first and
not timed. The timed part is `import_openimages` end to end: the streamed pass over the rows, the
per-image sets and the sparse file written. The peak is the process's maximum resident memory
(`resource.getrusage`), which includes Python and NumPy (~30 MB). Measured on 2 shared CPU cores:
300 k images, 3 M rows: 26-37 s (two runs), 0.23-0.24 GiB.
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dataset.importers.openimages import import_openimages  # noqa: E402  (needs the repo root on sys.path)


def make_fake_openimages(folder, images, rows_per_image, classes, seed=0):
    """Writes `labels.csv` and `classes.csv` in Open Images' format; returns their paths."""
    rng = np.random.default_rng(seed)
    descriptions = os.path.join(folder, "classes.csv")
    with open(descriptions, "w") as f:
        f.write("LabelName,DisplayName\n" + "".join(f"/m/{j:07x},Class {j}\n" for j in range(classes)))
    labels = os.path.join(folder, "labels.csv")
    with open(labels, "w") as f:
        f.write("ImageID,Source,LabelName,Confidence\n")
        for block in np.array_split(np.arange(images), max(1, images // 10_000)):
            lines = [f"{i:016x},verification,/m/{c:07x},{int(present)}\n" for i in block
                     for c, present in zip(rng.choice(classes, rows_per_image, replace=False),
                                           rng.random(rows_per_image) < 0.6)]
            f.write("".join(lines[k] for k in rng.permutation(len(lines))))
    return labels, descriptions


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300_000, help="images (default 300,000)")
    parser.add_argument("--rows-per-image", type=int, default=10, help="label rows an image (default 10)")
    parser.add_argument("--classes", type=int, default=9605, help="classes (default 9,605, V6's trainable)")
    parser.add_argument("--work-dir", default=None, help="folder for the files (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="openimages_bench_")
    try:
        os.makedirs(work_dir, exist_ok=True)
        print(f"generating {args.images:,} images x {args.rows_per_image} rows in {work_dir} (not timed)")
        labels, descriptions = make_fake_openimages(work_dir, args.images, args.rows_per_image, args.classes)
        out = os.path.join(work_dir, "train.sparse.csv")
        if os.path.exists(out):
            os.remove(out)
        start = time.perf_counter()
        import_openimages(labels, out, descriptions)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
        print(f"import_openimages: {args.images * args.rows_per_image:,} rows in {seconds:.1f} s, "
              f"peak memory {peak:.2f} GiB, {os.path.getsize(out) / 2**20:.1f} MiB written")
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
