"""Writes a synthetic COCO instances JSON with the shape and size of `instances_train2017.json`.

The real file: 118,287 images, 860,001 annotations (about 0.9% crowd), 80 categories with ids
1-90, 1,021 images without annotations, 448 MiB, most of it segmentation polygons. The fake one
matches those counts and roughly the byte size, so parsing time is representative. Same seed,
same bytes.

    python -m benchmarks.make_fake_coco /tmp/fake_coco/instances_train2017.json
"""

import argparse
import json
import os
import sys

import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from utils.atomic import atomic_path  # noqa: E402  (needs the repo root on sys.path)

# COCO's 80 category ids: 1-90 with ten unused.
CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


def make_fake_coco(path, num_images=118287, num_annotations=860001, num_empty=1021,
                   crowd_fraction=0.009, mean_polygon_points=24, seed=0):
    """Writes the fake file atomically.

    Args:
        path: str. Output JSON.
        num_images: int. Images in `images`.
        num_annotations: int. Entries in `annotations`.
        num_empty: int. Images given no annotation.
        crowd_fraction: float. Fraction of annotations with `iscrowd: 1` (RLE segmentation).
        mean_polygon_points: int. Mean vertices per polygon; sets the file size.
        seed: int. Random seed.

    Returns:
        str. `path`.
    """
    rng = np.random.default_rng(seed)
    image_ids = np.sort(rng.choice(600000, size=num_images, replace=False) + 1)
    heights = rng.integers(240, 641, num_images)
    widths = rng.integers(240, 641, num_images)
    owners = _annotation_owners(rng, num_images, num_annotations, num_empty)
    # Zipf-like class frequencies: COCO's 'person' alone has about a third of the annotations.
    class_p = 1.0 / np.arange(1, len(CATEGORY_IDS) + 1) ** 1.1
    categories = rng.choice(CATEGORY_IDS, size=num_annotations, p=class_p / class_p.sum())
    crowd = rng.random(num_annotations) < crowd_fraction

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write('{"info": {"description": "synthetic COCO-sized instances file", "version": "1.0"}, ')
        f.write('"licenses": [{"url": "http://example.org/license", "id": 1, "name": "fake"}], ')
        f.write('"images": ')
        json.dump([_image(int(i), int(h), int(w)) for i, h, w in zip(image_ids, heights, widths)], f)
        f.write(', "annotations": [')
        batch = 10000
        for start in tqdm(range(0, num_annotations, batch), desc="fake annotations", unit="batch"):
            stop = min(start + batch, num_annotations)
            items = [
                _annotation(rng, k + 1, int(image_ids[owners[k]]), int(categories[k]), bool(crowd[k]),
                            int(heights[owners[k]]), int(widths[owners[k]]), mean_polygon_points)
                for k in range(start, stop)
            ]
            text = json.dumps(items)[1:-1]
            f.write(text if start == 0 else ", " + text)
        f.write('], "categories": ')
        json.dump([{"supercategory": f"super_{(c - 1) // 10}", "id": c, "name": f"category_{c:02d}"}
                   for c in CATEGORY_IDS], f)
        f.write("}")
    return path


def _annotation_owners(rng, num_images, num_annotations, num_empty):
    """Image index of each annotation: every non-empty image gets at least one."""
    non_empty = rng.permutation(num_images)[num_empty:]
    extra = rng.choice(non_empty, size=num_annotations - len(non_empty))
    return rng.permutation(np.concatenate([non_empty, extra]))


def _image(image_id, height, width):
    name = f"{image_id:012d}.jpg"
    return {"license": 1, "file_name": name, "coco_url": f"http://images.example.org/train2017/{name}",
            "height": height, "width": width, "date_captured": "2013-11-14 11:18:45",
            "flickr_url": f"http://farm.example.org/{name}", "id": image_id}


def _annotation(rng, ann_id, image_id, category_id, crowd, height, width, mean_points):
    x, y = rng.uniform(0, width - 20), rng.uniform(0, height - 20)
    w, h = rng.uniform(5, width - x), rng.uniform(5, height - y)
    if crowd:
        segmentation = {"counts": rng.integers(0, 400, size=2 * mean_points).tolist(), "size": [height, width]}
    else:
        points = int(rng.integers(4, 2 * mean_points - 3))
        polygon = np.stack([rng.uniform(x, x + w, points), rng.uniform(y, y + h, points)], 1)
        segmentation = [np.round(polygon, 2).ravel().tolist()]
    return {"segmentation": segmentation, "area": round(w * h * 0.6, 4), "iscrowd": int(crowd),
            "image_id": image_id, "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
            "category_id": category_id, "id": ann_id}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="output JSON file")
    parser.add_argument("--images", type=int, default=118287, help="number of images")
    parser.add_argument("--annotations", type=int, default=860001, help="number of annotations")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    make_fake_coco(args.path, num_images=args.images, num_annotations=args.annotations,
                   num_empty=min(1021, args.images // 100), seed=args.seed)
    print(f"wrote {args.path} ({os.path.getsize(args.path) / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
