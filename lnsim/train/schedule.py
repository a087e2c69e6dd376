"""Learning-rate schedule in whole rungs: eta decays toward eta0 when the training loss plateaus.

The paper decays eta "toward the base precision eta0 whenever the loss plateaus"; B-bit Madam can only take
learning rates that are whole multiples of eta0, so the schedule lives in rungs: ``eta = rungs * eta0``,
``rungs`` starting at ``eta / eta0`` and floor-divided by ``factor`` (never below 1) after ``patience``
epochs without a relative improvement of ``threshold`` in the epoch's mean training loss. Float Madam takes
the same ``rungs * eta0``; Adam and SGD scale their learning rate by ``rungs / start`` (:attr:`scale`).
"""

from __future__ import annotations

import math

from lnsim.validation import check_int, check_interval

__all__ = ["PlateauSchedule"]


#: The schedule's defaults (``lnsim train``'s too): halve eta in rungs after 10 epochs without a fall of the
#: training loss by 0.1%.
DEFAULT_FACTOR = 2
DEFAULT_PATIENCE = 10
DEFAULT_THRESHOLD = 1e-3


class PlateauSchedule:
    """Reduce-on-plateau in whole rungs.

    Parameters
    ----------
    start_rungs : int
        eta / eta0 at the start.
    factor : int
        Divisor at each decay (floor division, at least 1 rung remains); 2 follows the paper's 0.016 -> 0.001.
    patience : int or None
        Epochs without improvement before a decay; None never decays (a constant learning rate).
    threshold : float
        Relative improvement of the best loss that counts as progress.

    State (saved in checkpoints): ``rungs``, ``best``, ``bad_epochs``, ``decays``.
    """

    def __init__(self, start_rungs: int, *, factor: int = DEFAULT_FACTOR, patience: int | None = DEFAULT_PATIENCE,
                 threshold: float = DEFAULT_THRESHOLD):
        self.start_rungs = check_int("start_rungs", start_rungs, 1)
        self.factor = check_int("decay_factor", factor, 2)
        self.patience = None if patience is None else check_int("patience", patience, 1)
        self.threshold = check_interval("threshold", threshold, 0, 1)
        self.rungs = self.start_rungs
        self.best = math.inf
        self.bad_epochs = 0
        self.decays = 0

    @property
    def scale(self) -> float:
        """Current over starting learning rate."""
        return self.rungs / self.start_rungs

    def update(self, loss: float) -> bool:
        """Record an epoch's mean training loss; return True if the learning rate was decayed."""
        if loss < self.best * (1.0 - self.threshold):
            self.best = loss
            self.bad_epochs = 0
            return False
        self.bad_epochs += 1
        if self.patience is None or self.bad_epochs < self.patience or self.rungs == 1:
            return False
        self.rungs = max(1, self.rungs // self.factor)
        self.decays += 1
        self.bad_epochs = 0
        return True

    def state(self) -> dict:
        """The mutable state, JSON-able."""
        return {"rungs": self.rungs, "best": self.best if math.isfinite(self.best) else None,
                "bad_epochs": self.bad_epochs, "decays": self.decays}

    def load_state(self, state: dict) -> None:
        """Restore :meth:`state`."""
        self.rungs = int(state["rungs"])
        self.best = math.inf if state["best"] is None else float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])
        self.decays = int(state["decays"])
