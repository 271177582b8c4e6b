"""Generic helpers, the lowest layer: config loading and its checks, atomic writes, settings objects, run folders."""
