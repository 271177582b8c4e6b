"""Network slimming (Liu et al. 2017, "Learning Efficient Convolutional Networks through Network Slimming", ICCV).

Three steps: train with an L1 penalty on the BatchNorm scales (gammas) of the prunable layers
(`sparsity.py`, the `slimming_l1` setting), so that unneeded channels get a gamma near zero; remove
the channels whose gamma falls under one global threshold (`plan.py`) by building a thinner model
and copying the kept weights into it (`transfer.py`); fine-tune that model. Which channels may go
depends on the backbone (`families.py`): in a residual network only the channels inside a block,
so that the residual sums keep their width. `costs.py` counts what the pruning saves.
"""
