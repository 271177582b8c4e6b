"""Export: the format registry and its writers, serving signatures, and the parity check that owns its tolerances."""
