"""Test mode's report: every figure, the tables, thresholds side by side, TensorBoard, Markdown escaping."""

import csv
import json
import os

import numpy as np
from PIL import Image
from tiny_run import save_tiny_model, tiny_config

from dataset.labels import read_labels, write_labels_csv
from dataset.run_splits import load_split
from multi_label.calibration import fit_and_save_calibration
from multi_label.evaluation.report import FIGURES, confident_errors, confusion_counts, markdown_cell
from multi_label.tasks.settings import pipeline_settings, split_settings
from multi_label.tasks.test import run_test


def test_report_has_every_figure_and_the_numbers_of_metrics_json(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = tiny_config(data_dir, report_examples=4)
    path, _ = save_tiny_model(config, "models/tiny")
    val = load_split(split_settings(config), "val_labels")
    fit_and_save_calibration(path, val, pipeline_settings(config), threshold=config.threshold)
    run_test(config)
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "models" / "tiny" / "metrics.json").read_text())

    folder = tmp_path / "models" / "tiny" / "report"
    for name in FIGURES.values():
        with Image.open(folder / name) as image:
            assert image.format == "PNG" and min(image.size) > 100, name
    report = (folder / "report.md").read_text()
    for name in FIGURES.values():
        assert f"]({name})" in report, name

    fixed, fitted = metrics["at_fixed_threshold"], metrics["at_fitted_thresholds"]
    assert metrics["thresholds_in_use"] == "fitted"
    assert f"| CF1 | {fixed['CF1']:.4f} | {fitted['CF1']:.4f} | {metrics['at_top_k']['CF1']:.4f} |" in report
    assert f"| mAP | {metrics['mAP']:.4f} |" in report
    assert f"Test CF1 at the fixed threshold 0.5: {fixed['CF1']:.4f}" in out
    assert f"Test CF1 at per-class thresholds fitted on validation: {fitted['CF1']:.4f}" in out
    saved = json.loads((tmp_path / "models" / "tiny" / "thresholds.json").read_text())["thresholds"]
    np.testing.assert_allclose(metrics["threshold"], list(saved.values()))

    # the confusion table agrees with predictions.csv, the test labels and the fitted thresholds
    table = read_labels(config.test_labels)
    with open(tmp_path / "models" / "tiny" / "predictions.csv") as f:
        rows = list(csv.reader(f))[1:]
    probabilities = np.array([[float(v) for v in row[1:]] for row in rows])
    counts = confusion_counts(table.labels, probabilities >= np.array(list(saved.values())))
    for name, (tp, fp, fn, tn) in zip(table.class_names, counts):
        assert f"| {name} | {tp + fn} | " in report and f" | {tp} | {fp} | {fn} | {tn} | " in report
    assert report.count("](false_positives.png)") == 1 and "\n4. test/" in report

    events = os.listdir(tmp_path / "logs" / "tiny" / "test")
    assert len(events) == 1 and events[0].startswith("events.out.tfevents.")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    accumulator = EventAccumulator(str(tmp_path / "logs" / "tiny" / "test"), size_guidance={"tensors": 0})
    accumulator.Reload()
    plugins = {tag: accumulator.SummaryMetadata(tag).plugin_data.plugin_name for tag in accumulator.Tags()["tensors"]}
    assert plugins["test/mAP"] == "scalars" and plugins["report/pr_curves"] == "images"
    assert {f"{name}/pr_curves" for name in table.class_names} <= {t for t, p in plugins.items() if p == "pr_curves"}


def test_odd_class_names_are_escaped_and_drawn(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    odd = ["a|b", "<b>bold</b>", "cost $5", "under_score", "*star*", "five", "six", "seven", "eight", "nine"]
    source = read_labels(os.path.join(data_dir, "test.csv"))
    write_labels_csv(str(data_dir / "odd.csv"), source.names, odd, source.labels)
    config = tiny_config(data_dir, test_labels=str(data_dir / "odd.csv"), class_thresholds="fixed", report_examples=2)
    save_tiny_model(config, "models/tiny", class_names=odd)
    run_test(config)
    report = (tmp_path / "models" / "tiny" / "report" / "report.md").read_text()
    assert "| a\\|b | " in report and "&lt;b&gt;bold&lt;/b&gt;" in report and "<b>" not in report
    assert "under\\_score" in report and "\\*star\\*" in report
    assert "No fitted thresholds for this checkpoint" in report and "fixed 0.5 (in use)" in report
    for name in FIGURES.values():  # "$" in a title would start mathtext and fail without escaping
        assert (tmp_path / "models" / "tiny" / "report" / name).is_file()


def test_report_false_writes_metrics_only(data_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tiny_config(data_dir, report=False)
    save_tiny_model(config, "models/tiny")
    run_test(config)
    assert (tmp_path / "models" / "tiny" / "metrics.json").is_file()
    assert not (tmp_path / "models" / "tiny" / "report").exists() and not (tmp_path / "logs").exists()


def test_confusion_counts_leave_unknown_labels_out():
    targets = np.array([[1, 0, -1], [0, 1, -1], [1, -1, 0]])
    predicted = np.array([[True, True, True], [True, False, True], [False, True, False]])
    np.testing.assert_array_equal(confusion_counts(targets, predicted), [[1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1]])


def test_confident_errors_are_the_surest_wrong_ones():
    targets = np.array([[0, 1], [0, 1], [1, 0]])
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.7]])
    predicted = probabilities >= 0.5
    assert confident_errors(targets, probabilities, predicted, "fp", 5) == [(0, 0, 0.9), (2, 1, 0.7), (1, 0, 0.6)]
    assert confident_errors(targets, probabilities, predicted, "fn", 2) == [(0, 1, 0.1), (2, 0, 0.2)]


def test_markdown_cell_keeps_tables_intact():
    assert markdown_cell("a|b\nc") == "a\\|b c"
    assert markdown_cell("<script>x</script> & [link](y)") == "&lt;script&gt;x&lt;/script&gt; &amp; \\[link\\](y)"
