"""The before/after table of a pruning, as printed by mode=prune."""

ROWS = (  # key, label, format
    ("parameters", "parameters", "{:,.0f}"),
    ("macs", "MACs per image", "{:,.0f}"),  # multiply-accumulates; FLOPs are often quoted as twice these
    ("cpu_ms_batch1", "CPU ms, batch 1", "{:.2f}"),
    ("cpu_ms_batch32", "CPU ms, batch 32", "{:.1f}"),
    ("cpu_images_per_second_batch32", "CPU images/s, batch 32", "{:.1f}"),
)


def pruning_table(before, after, score_name):
    """The figures of `costs.measure` and the test score before and after, one row each, with the change.

    Args:
        before: dict. Figures of the original model, with "test" (the test score or None).
        after: dict. The same of the pruned model.
        score_name: str. What "test" is ("mAP", or "accuracy" for a groups head).
    """
    lines = [f"{'':<24}{'before':>16}{'after':>16}{'change':>10}"]
    for key, label, form in ROWS:
        change = f"{after[key] / before[key] - 1:+.1%}" if before[key] else ""
        lines.append(f"{label:<24}{form.format(before[key]):>16}{form.format(after[key]):>16}{change:>10}")
    if before["test"] is None or after["test"] is None:
        lines.append(f"{'test ' + score_name:<24}{'n/a (test_labels is empty)':>42}")
    else:
        change = f"{100 * (after['test'] - before['test']):+.2f} pt"
        lines.append(f"{'test ' + score_name:<24}{before['test']:>16.4f}{after['test']:>16.4f}{change:>10}")
    return "\n".join(lines)
