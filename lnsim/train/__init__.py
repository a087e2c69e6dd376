"""The MLP trainer on the simulated B-bit Madam datapath, with float Madam, Adam and SGD baselines.

Modules: :mod:`~lnsim.train.data` (data sets and splits), :mod:`~lnsim.train.model` (the float32 MLP),
:mod:`~lnsim.train.optim` (B-bit and float optimisers over the model's tensors, initialisation),
:mod:`~lnsim.train.schedule` (learning rate in whole rungs), :mod:`~lnsim.train.checkpoint`,
:mod:`~lnsim.train.config` (the configuration and its options), :mod:`~lnsim.train.runner` (training runs), :mod:`~lnsim.train.report` (summary, table, JSON),
and :mod:`~lnsim.train.plots`. The ``lnsim train`` subcommand is :mod:`lnsim.cli.train`.
"""

from lnsim.train.data import BUNDLED, Split, load_dataset, make_split
from lnsim.train.model import MLP
from lnsim.train.optim import INIT_DEPTH, INITS, OPTIMIZERS, FloatParams, LNSParams, init_lns
from lnsim.train.config import TrainConfig
from lnsim.train.runner import train
from lnsim.train.schedule import PlateauSchedule

__all__ = [
    "BUNDLED",
    "INIT_DEPTH",
    "INITS",
    "MLP",
    "OPTIMIZERS",
    "FloatParams",
    "LNSParams",
    "PlateauSchedule",
    "Split",
    "TrainConfig",
    "init_lns",
    "load_dataset",
    "make_split",
    "train",
]
