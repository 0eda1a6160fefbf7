"""Hydra sweeper plugin: ``python train.py --multirun hydra/sweeper=tunepilot``.

Hydra finds it through the ``hydra_plugins`` namespace package. The search space is
written in Hydra's own override grammar, parsed by hydra-core's parser (so the PyPI
Hydra Optuna sweeper, which pins optuna<3, is not needed).
"""
