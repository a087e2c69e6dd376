"""The training configuration: :class:`TrainConfig`, its options (:data:`TRAIN_OPTIONS`) and the one place
that turns user options into a configuration (:meth:`TrainConfig.from_options`).

``lnsim train`` and ``lnsim sweep`` take their training flags from :data:`TRAIN_OPTIONS`; a field's default is
written once, on the field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lnsim.spec import Option, Spec
from lnsim.spec.schema import field_options, option
from lnsim.train.data import BUNDLED, DEFAULT_TEST_SIZE
from lnsim.train.optim import INITS, OPTIMIZERS
from lnsim.train.schedule import DEFAULT_FACTOR, DEFAULT_PATIENCE, DEFAULT_THRESHOLD
from lnsim.validation import SpecError, check_choice, check_int, check_interval, check_positive

__all__ = ["TrainConfig", "TRAIN_OPTIONS", "THREADS", "DEFAULT_LR", "SCHEDULES", "MAX_SEEDS", "check_threads"]

#: Learning rates of the additive baselines when ``lr`` is not given.
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.01}
SCHEDULES = ("plateau", "constant")
#: Most seeds one run takes.
MAX_SEEDS = 1000


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; validated on construction (SpecError, a ValueError, naming the field).

    ``spec`` drives B-bit Madam, and float Madam takes its eta, eta_star, beta and bias correction; Adam and
    SGD take ``lr`` (default :data:`DEFAULT_LR`) and SGD ``momentum``. ``patience`` None with ``schedule``
    "constant" keeps the learning rate fixed. ``dataset`` is a bundled data set or an ``.npz`` path.
    """

    spec: Spec
    optimizer: str = field(default="lns-madam", metadata=option(
        name="optimizer", kind=str, range=" | ".join(OPTIMIZERS), help=" | ".join(OPTIMIZERS) + " (default {default})"))
    dataset: str = "digits"
    hidden: tuple = (128,)
    epochs: int = field(default=100, metadata=option(
        name="epochs", kind=int, range=">= 1", help="epochs (default {default})"))
    batch_size: int = field(default=32, metadata=option(
        name="batch_size", kind=int, range=">= 1", help="minibatch size (default {default})"))
    seeds: tuple = (0,)
    init: str = field(default="quantized", metadata=option(
        name="init", kind=str, range=" | ".join(INITS), help="codes: " + " | ".join(INITS) + " (default {default})"))
    sigma_scale: float = field(default=3.0, metadata=option(
        name="sigma_scale", kind=float, range="> 0",
        help="sigma_star as a multiple of the usual init scale 1/sqrt(3 fan_in) (default {default:g})"))
    schedule: str = field(default="plateau", metadata=option(
        name="schedule", kind=str, range=" | ".join(SCHEDULES), help=" | ".join(SCHEDULES) + " (default {default})"))
    patience: int = field(default=DEFAULT_PATIENCE, metadata=option(
        name="patience", kind=int, range=">= 1", unit="epochs",
        help="epochs without progress before a decay (default {default})"))
    decay_factor: int = field(default=DEFAULT_FACTOR, metadata=option(
        name="decay_factor", kind=int, range=">= 2", help="divide eta in rungs by this (default {default})"))
    threshold: float = field(default=DEFAULT_THRESHOLD, metadata=option(
        name="threshold", kind=float, range="[0, 1)",
        help="relative fall of the training loss that counts as progress (default {default:g})"))
    lr: float | None = field(default=None, metadata=option(
        name="lr", kind=float, range="> 0", derived=f"{DEFAULT_LR['adam']:g} (adam), {DEFAULT_LR['sgd']:g} (sgd)",
        help=f"learning rate of adam (default {DEFAULT_LR['adam']:g}) and sgd ({DEFAULT_LR['sgd']:g})"))
    momentum: float = field(default=0.9, metadata=option(
        name="momentum", kind=float, range="[0, 1)", help="sgd momentum (default {default})"))
    test_size: float = field(default=DEFAULT_TEST_SIZE, metadata=option(
        name="test_size", kind=float, range="(0, 1)", help="held-out share when the data has no test set (default {default})"))

    def __post_init__(self):
        if not isinstance(self.spec, Spec):
            raise SpecError(f"spec must be a Spec, not {self.spec!r}")
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("init", self.init, INITS)
        check_choice("schedule", self.schedule, SCHEDULES)
        object.__setattr__(self, "hidden", tuple(check_int("hidden sizes", h, 1, 65536) for h in self.hidden))
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        seeds = tuple(check_int("seed", s, 0, 2**63 - 1) for s in self.seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise SpecError(f"seeds must be one or more distinct integers, not {self.seeds!r}")
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "sigma_scale", check_positive("sigma_scale", self.sigma_scale))
        check_int("patience", self.patience, 1)
        check_int("decay_factor", self.decay_factor, 2)
        object.__setattr__(self, "threshold", check_interval("threshold", self.threshold, 0, 1))
        if self.lr is not None:
            object.__setattr__(self, "lr", check_positive("lr", self.lr))
        object.__setattr__(self, "momentum", check_interval("momentum", self.momentum, 0, 1))
        object.__setattr__(self, "test_size", check_interval("test_size", self.test_size, 0, 1, closed_low=False))

    @classmethod
    def from_options(cls, spec: Spec, **options) -> "TrainConfig":
        """The configuration named by user options (the keywords of :data:`TRAIN_OPTIONS`; None means not given).

        ``dataset`` names a bundled data set and ``data`` an ``.npz`` file (not both); ``hidden`` is a
        comma-separated text or a sequence of widths; ``seeds`` is a count of seeds from ``seed`` on.
        Raises :class:`SpecError` (one line) for anything invalid.
        """
        for name in options:
            if name not in _NAMES:
                raise SpecError(f"training option must be one of {', '.join(_NAMES)}, not {name!r}")
        o = {opt.name: opt.default for opt in TRAIN_OPTIONS} | {k: v for k, v in options.items() if v is not None}
        if "dataset" in options and options["dataset"] is not None and o["data"] is not None:
            raise SpecError("give --dataset or --data, not both")
        dataset = o["data"] if o["data"] is not None else o["dataset"]
        if o["data"] is None:
            check_choice("dataset", dataset, BUNDLED, hint=" (use --data FILE.npz for files)")
        n_seeds = check_int("seeds", o["seeds"], 1, MAX_SEEDS)
        first = check_int("seed", o["seed"], 0)
        fields = {name: o[name] for name in _FIELD_NAMES}
        return cls(spec=spec, dataset=dataset, hidden=_hidden(o["hidden"]), seeds=tuple(range(first, first + n_seeds)),
                   **fields)

    @property
    def lns(self) -> bool:
        """True for B-bit Madam."""
        return self.optimizer == "lns-madam"

    @property
    def effective_lr(self) -> float | None:
        """The learning rate of Adam or SGD (None for the Madams)."""
        if self.optimizer in DEFAULT_LR:
            return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]
        return None

    def to_dict(self) -> dict:
        """JSON-able form (the spec as :meth:`Spec.to_dict`); what a checkpoint must match to be resumed."""
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        d["hidden"] = list(self.hidden)
        d["seeds"] = list(self.seeds)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["spec"] = Spec.from_dict(d["spec"])
        d["hidden"] = tuple(d["hidden"])
        d["seeds"] = tuple(d["seeds"])
        return cls(**d)


def _hidden(value) -> tuple:
    if isinstance(value, (list, tuple)):  # a grid file's list of widths, numbers or text
        value = ",".join(str(v) for v in value)
    elif isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    parts = [t.strip() for t in str(value).split(",") if t.strip()]
    try:
        return tuple(int(t) for t in parts)
    except ValueError:
        raise SpecError(f"hidden must be comma-separated integers, not {value!r}") from None


_FIELD_OPTIONS = {o.name: o for o in field_options(TrainConfig)}
_FIELD_NAMES = tuple(_FIELD_OPTIONS)

#: The training options of ``lnsim train`` (and, but for ``optimizer``, ``lr`` and ``momentum``, of
#: ``lnsim sweep``), in the order of the command line's flags.
TRAIN_OPTIONS = (
    _FIELD_OPTIONS["optimizer"],
    Option(name="dataset", kind=str, default=TrainConfig.dataset, range=" | ".join(BUNDLED),
           help="bundled data set: " + ", ".join(BUNDLED) + " (default {default})"),
    Option(name="data", kind=str, metavar="FILE.npz", range=".npz path",
           help="your data instead: arrays X (samples x features), integer y, optional X_test, y_test"),
    Option(name="hidden", kind=str, default=",".join(map(str, TrainConfig.hidden)), range="comma-separated widths",
           help="hidden layer widths, comma-separated; '' for none (default {default})"),
    _FIELD_OPTIONS["epochs"],
    _FIELD_OPTIONS["batch_size"],
    Option(name="seeds", kind=int, default=1, range=f"1..{MAX_SEEDS}", help="number of seeds (default {default})"),
    Option(name="seed", kind=int, default=TrainConfig.seeds[0], range=">= 0", help="first seed (default {default})"),
    *(_FIELD_OPTIONS[name] for name in ("init", "sigma_scale", "schedule", "patience", "decay_factor", "threshold",
                                        "lr", "momentum", "test_size")),
)
_NAMES = tuple(o.name for o in TRAIN_OPTIONS)

#: Threads of one ``lnsim train`` run (not part of the configuration: results do not depend on it).
THREADS = Option(name="threads", kind=int, default=1, bounds=(1, 256),
                 help="threads for the kernels and BLAS (default {default})")


def check_threads(value) -> int:
    """``value`` as a thread count in :data:`THREADS`' range, else a SpecError."""
    return check_int("threads", value, *THREADS.bounds)
