"""The ranges and rules of unknown_labels and the partial-label losses (hill, splc, llr, epr).

utils/config_rules.py merges `PARTIAL_LABEL_LIMITS` into its LIMITS and `PARTIAL_LABEL_RULES` (as
Rule(keys, broken, message)) into its RULES, so they are checked with the others, once, at load
time; they live here to keep that module a readable size.
"""

# configs.PartialLabelLoss (tests/test_registries.py ties the two; only config_rules reads configs).
PARTIAL_LABEL_LOSSES = ("hill", "splc", "llr", "epr")
PARTIAL_NAMES = ", ".join(repr(name) for name in PARTIAL_LABEL_LOSSES[:-1]) + f" or {PARTIAL_LABEL_LOSSES[-1]!r}"

# key -> (test, what is allowed), as config_rules.LIMITS.
PARTIAL_LABEL_LIMITS = {
    "hill_lamb": (lambda v: v >= 1, "a number >= 1 (the weight lambda - p of its -1-label term stays >= 0)"),
    "hill_margin": (lambda v: v >= 0, "a number >= 0"),
    "hill_gamma": (lambda v: v >= 0, "a number >= 0"),
    "splc_tau": (lambda v: 0 < v < 1, "a probability in (0, 1)"),
    "splc_margin": (lambda v: v >= 0, "a number >= 0"),
    "splc_gamma": (lambda v: v >= 0, "a number >= 0"),
    "splc_start_epoch": (lambda v: v >= 0, "an integer >= 0 (0-based: 1 starts after the first epoch)"),
    "llr_rate_per_epoch": (lambda v: 0 <= v <= 1, "a number in [0, 1] (the paper's 0.1-0.5% are 0.001-0.005)"),
    "epr_expected_positives": (lambda v: v is None or v > 0, "None or a number > 0 (positives per image)"),
}

# (keys, broken(config), message(config)), the fields of config_rules.Rule.
PARTIAL_LABEL_RULES = (
    (("unknown_labels", "loss"), lambda c: c.unknown_labels != "ignore" and c.loss in PARTIAL_LABEL_LOSSES,
     lambda c: f"unknown_labels={c.unknown_labels!r} with loss={c.loss!r}: loss {PARTIAL_NAMES} gives -1 labels a "
               "term of its own; expected unknown_labels='ignore'"),
    (("head", "unknown_labels"), lambda c: c.head == "groups" and c.unknown_labels != "ignore",
     lambda c: f"head='groups' with unknown_labels={c.unknown_labels!r}: the one-of-K losses leave an unknown (-1) "
               "group label out, there is no negative to take it for; expected unknown_labels='ignore'"),
    (("head", "loss"), lambda c: c.head == "groups" and c.loss in PARTIAL_LABEL_LOSSES,
     lambda c: f"head='groups' with loss={c.loss!r}: the partial-label losses have no one-of-K version; choose "
               "bce, focal, ghm or asl"),
)
