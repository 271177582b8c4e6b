"""Optimisation: optimizers (RAdam), learning-rate schedules and their callbacks, weight decay, fine-tuning controls."""
