"""The classifier: model, heads, losses, optimisation, training, evaluation and export.

`tasks/` holds one module per mode, which wires these parts together.
"""
