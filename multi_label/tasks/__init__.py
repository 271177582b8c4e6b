"""One module per mode of run.py: the only code that reads the whole Config; each wires library parts top to bottom."""
