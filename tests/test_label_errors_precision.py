"""benchmarks/label_errors_precision.py: planted entries are counted the way the note's table reads them."""

import csv

import numpy as np

from benchmarks.label_errors_precision import measure
from benchmarks.plant_errors import plant_label_file
from dataset.labels import read_labels, write_labels_csv
from multi_label.label_quality.out_of_fold import probabilities_csv


def test_measure_counts_the_planted_entries_by_direction_and_score(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    clean = (rng.random((60, 4)) < 0.4).astype(int)
    clean[0], clean[1] = 1, 0  # every class has both values
    names = [f"img{i}.png" for i in range(len(clean))]
    write_labels_csv(str(tmp_path / "train.csv"), names, ["a", "b", "c", "d"], clean)
    monkeypatch.chdir(tmp_path)
    planted_csv, entries_csv = plant_label_file("train.csv", 0.1, seed=1)
    noisy = read_labels(planted_csv)
    # Out-of-fold probabilities that know the clean labels: the planted entries are the most suspect.
    probabilities = np.where(clean == 1, 0.9, 0.1) + rng.uniform(-0.05, 0.05, clean.shape)
    folder = tmp_path / "label-errors"
    folder.mkdir()
    (folder / "probabilities.csv").write_text(probabilities_csv(
        noisy.names, noisy.class_names, probabilities, [planted_csv] * len(noisy)))
    with open(entries_csv, encoding="utf-8") as f:
        planted = list(csv.DictReader(f))
    spurious = sum(row["planted"] == "1" for row in planted)
    planted_keys = {(row["image"], row["class"]) for row in planted}
    clean_entry = next((n, c) for n in names for c in "abcd" if (n, c) not in planted_keys)
    flagged = planted[: len(planted) // 2] + [{"image": clean_entry[0], "label_file": planted_csv,
                                               "class": clean_entry[1]}]
    with open(folder / "label_errors.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, ["image", "label_file", "class"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(flagged)

    measure(entries_csv, str(folder))
    out = capsys.readouterr().out

    half = len(planted) // 2
    assert (f"flagged: {len(flagged)} entries, {half} of the {len(planted)} planted: precision "
            f"{half / len(flagged):.3f}, recall {half / len(planted):.3f}") in out
    assert f"top {len(planted)} of the ranking: {len(planted)} planted: precision 1.000, recall 1.000" in out
    assert f"of them labelled 0 (likely missing): {len(planted) - spurious}, precision 1.000" in out
    assert f"of them labelled 1 (likely spurious): {spurious}, precision 1.000" in out
    assert "normalized_margin score: precision 1.000" in out
    assert "confidence_weighted_entropy score: precision 1.000" in out
