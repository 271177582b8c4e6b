"""Training machinery around model.fit: callbacks, crash-safe backup and resume, signals, run state, distribution."""
