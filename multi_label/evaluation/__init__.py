"""Evaluation: one inference loop, exact metrics, thresholds and temperature, the test report."""
