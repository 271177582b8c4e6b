"""Times the COCO importer on a synthetic file the size of `instances_train2017.json`.

    python -m benchmarks.bench_coco_import                 # temp folder, removed afterwards
    python -m benchmarks.bench_coco_import --work-dir /tmp/coco_bench   # keeps and reuses the file

The fake file (118,287 images, 860,001 annotations, ~450 MiB; see `make_fake_coco.py`) takes
about 40 s to generate and is not timed. The timed part is `import_coco` end to end: reading and
parsing the JSON, building the labels, writing the CSV. Target: under 30 s.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.make_fake_coco import make_fake_coco  # noqa: E402  (needs the repo root on sys.path)
from dataset.importers.coco import import_coco  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", default=None,
                        help="folder for the fake JSON and the CSV; kept, and the JSON reused if present "
                             "(default: a temporary folder, removed at the end)")
    parser.add_argument("--repeats", type=int, default=1, help="timed imports; the best is reported")
    args = parser.parse_args(argv)
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="coco_bench_")
    try:
        json_path = os.path.join(work_dir, "instances_train2017_fake.json")
        if not os.path.isfile(json_path):
            print(f"generating {json_path} (not timed)")
            make_fake_coco(json_path)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            table = import_coco(json_path, os.path.join(work_dir, "train2017.csv"), image_prefix="train2017")
            times.append(time.perf_counter() - start)
        print(f"import_coco: {len(table)} images, {len(table.class_names)} classes, "
              f"best of {args.repeats}: {min(times):.1f} s  (all: {', '.join(f'{t:.1f}' for t in times)})")
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
