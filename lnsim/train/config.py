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

__all__ = ["TrainConfig", "TRAIN_OPTIONS", "DATAPATH_ONLY_OPTIONS", "ignored_spec_options", "THREADS", "DEFAULT_LR", "SCHEDULES", "MAX_SEEDS", "MODELS", "DEFAULT_HIDDEN",
           "check_threads"]

#: Learning rates of the additive baselines when ``lr`` is not given.
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.01}
SCHEDULES = ("plateau", "constant")
#: Most seeds one run takes.
MAX_SEEDS = 1000
#: The trainer's models: the NumPy MLP, and the PyTorch CNNs of :mod:`lnsim.torch.models`.
MODELS = ("mlp", "cnn1d", "cnn2d")
#: ``hidden`` of each model when none is given: the MLP's hidden widths, the CNNs' convolution channels.
DEFAULT_HIDDEN = {"mlp": (128,), "cnn1d": (32, 32, 32), "cnn2d": (16, 32)}
#: Spec options that only the B-bit datapath reads: float Madam takes the ladder's eta0, eta, eta_star, beta and
#: bias correction from the spec, but not how the hardware rounds gradients, state and logarithms.
DATAPATH_ONLY_OPTIONS = ("grad_format", "state_bits", "log_frac_bits", "table_index_bits")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; validated on construction (SpecError, a ValueError, naming the field).

    ``spec`` drives B-bit Madam, and float Madam takes its eta, eta_star, beta and bias correction; Adam and
    SGD take ``lr`` (default :data:`DEFAULT_LR`) and SGD ``momentum``. ``patience`` None with ``schedule``
    "constant" keeps the learning rate fixed. ``dataset`` is a bundled data set or an ``.npz`` path.

    ``model`` is one of :data:`MODELS`; ``hidden`` its widths (None: :data:`DEFAULT_HIDDEN`). ``task``, a
    ``module:function`` (:mod:`lnsim.train.torch_task`), replaces model and data: then ``model`` is None and
    ``dataset`` the task's name. Every model but the MLP trains with PyTorch (``lnsim[torch]``).
    """

    spec: Spec
    optimizer: str = field(default="lns-madam", metadata=option(
        name="optimizer", kind=str, range=" | ".join(OPTIMIZERS), help=" | ".join(OPTIMIZERS) + " (default {default})"))
    model: str | None = field(default="mlp", metadata=option(
        name="model", kind=str, range=" | ".join(MODELS),
        help="mlp (NumPy), cnn1d or cnn2d (PyTorch, pip install \"lnsim[torch]\") (default {default})"))
    task: str | None = field(default=None, metadata=option(
        name="task", kind=str, metavar="MODULE:FUNCTION", range="module:function or file.py:function",
        help="your own PyTorch model and data instead of --model/--dataset (see docs/torch.md)"))
    dataset: str = "digits"
    hidden: tuple | None = None
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
        if self.task is None:
            check_choice("model", self.model, MODELS)
        elif not isinstance(self.task, str) or self.model is not None:
            raise SpecError(f"a task replaces the model: give model=None with task={self.task!r}")
        hidden = DEFAULT_HIDDEN.get(self.model, ()) if self.hidden is None else self.hidden
        object.__setattr__(self, "hidden", tuple(check_int("hidden sizes", h, 1, 65536) for h in hidden))
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
        if o["task"] is not None:
            given = [name for name in ("model", "dataset", "data", "hidden") if options.get(name) is not None]
            if given:
                raise SpecError(f"--task brings its own model and data: give --task or --{given[0]}, not both")
            if not isinstance(o["task"], str) or ":" not in o["task"]:
                raise SpecError(f"task must be module:function or path/to/file.py:function, not {o['task']!r}")
            o["model"], dataset = None, o["task"]
        elif o["data"] is None:
            check_choice("dataset", dataset, BUNDLED, hint=" (use --data FILE.npz for files)")
        n_seeds = check_int("seeds", o["seeds"], 1, MAX_SEEDS)
        first = check_int("seed", o["seed"], 0)
        fields = {name: o[name] for name in _FIELD_NAMES}
        hidden = None if o["hidden"] is None else _hidden(o["hidden"])
        return cls(spec=spec, dataset=dataset, hidden=hidden, seeds=tuple(range(first, first + n_seeds)), **fields)

    @property
    def lns(self) -> bool:
        """True for B-bit Madam."""
        return self.optimizer == "lns-madam"

    @property
    def uses_torch(self) -> bool:
        """True when PyTorch trains this configuration (a CNN or a task), False for the NumPy MLP."""
        return self.model != "mlp"

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
        d.setdefault("model", "mlp")  # saved before the CNNs
        d.setdefault("task", None)
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
    _FIELD_OPTIONS["model"],
    _FIELD_OPTIONS["task"],
    Option(name="dataset", kind=str, default=TrainConfig.dataset, range=" | ".join(BUNDLED),
           help="bundled data set: " + ", ".join(BUNDLED) + " (default {default})"),
    Option(name="data", kind=str, metavar="FILE.npz", range=".npz path",
           help="your data instead: arrays X (samples x features), integer y, optional X_test, y_test"),
    Option(name="hidden", kind=str, range="comma-separated widths",
           help="mlp: hidden layer widths, comma-separated, '' for none (default "
                + ",".join(map(str, DEFAULT_HIDDEN["mlp"])) + "); cnn1d, cnn2d: convolution channels (default "
                + "; ".join(",".join(map(str, DEFAULT_HIDDEN[m])) for m in MODELS[1:]) + ")"),
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


def ignored_spec_options(optimizer: str, given) -> list[str]:
    """The names in ``given`` (spec options a user set) that ``optimizer`` does not read: every one for Adam and
    SGD, :data:`DATAPATH_ONLY_OPTIONS` for float Madam, none for B-bit Madam; in the order given."""
    if optimizer in ("adam", "sgd"):
        return list(given)
    if optimizer == "madam":
        return [name for name in given if name in DATAPATH_ONLY_OPTIONS]
    return []


def check_threads(value) -> int:
    """``value`` as a thread count in :data:`THREADS`' range, else a SpecError."""
    return check_int("threads", value, *THREADS.bounds)
