"""Options: the metadata of every parameter a user sets (name, type, default, allowed range, unit, help).

An :class:`Option` sits on each field of :class:`~lnsim.spec.LNSFormat` and :class:`~lnsim.spec.MadamConfig`
(``dataclasses.field(metadata=option(...))``), and on the training configuration; the command line's flags,
the sweep's grid axes and the docs' option table are all made from these records, so a parameter is described
once, beside the field it fills.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["Option", "option", "field_options", "bounds", "options_table"]

#: The key of an :class:`Option` in a dataclass field's metadata.
KEY = "lnsim.option"


@dataclass(frozen=True)
class Option:
    """One parameter as users see it.

    ``name`` is the keyword (``eta_rungs``) and, with ``-`` for ``_``, the command-line flag (``--eta-rungs``).
    ``kind`` is the type of its values (int, float, str or bool). ``default`` is the value when it is not given
    (None: derived from the others, described by ``derived``, or simply absent). ``range`` is the allowed
    values as text and ``bounds`` the same range as numbers where it is one (an integer option with bounds
    and no ``range`` reads ``"lo..hi"``). ``help`` is the line of ``--help``; ``{default}`` and ``{range}`` in
    it are filled in. ``flag`` overrides the flag (``--no-bias-correction`` for a bool that defaults to
    True); ``metavar`` the placeholder of its value.
    """

    name: str
    kind: type
    help: str
    default: object = None
    range: str = ""
    bounds: tuple | None = None
    unit: str = ""
    derived: str = ""
    flag: str | None = None
    metavar: str | None = None

    @property
    def range_text(self) -> str:
        """The allowed values as text: :attr:`range`, else ``"lo..hi"`` of an integer's :attr:`bounds`."""
        if self.range or self.bounds is None or self.kind is not int:
            return self.range
        return f"{self.bounds[0]}..{self.bounds[1]}"

    @property
    def cli_flag(self) -> str:
        """The command-line flag, e.g. ``--eta-star-rungs``."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def help_text(self) -> str:
        """:attr:`help` with its ``{default}`` and ``{range}`` filled in."""
        return self.help.format(default=self.default, range=self.range_text)

    def describe_default(self) -> str:
        """The default as a table cell: the value, the derivation rule, or a dash."""
        if self.derived:
            return self.derived
        if self.default is None:
            return "-"
        if self.kind is bool:
            return f"{self.name} = {self.default}"
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)


def option(**kwargs) -> dict:
    """Field metadata holding one :class:`Option` (for ``dataclasses.field(metadata=...)``)."""
    return {KEY: Option(**kwargs)}


def field_options(cls) -> tuple:
    """The :class:`Option` of every field of the dataclass ``cls`` that has one, in field order.

    A field's dataclass default, where it has one, is the option's default unless the option names its own.
    """
    out = []
    for f in dataclasses.fields(cls):
        opt = f.metadata.get(KEY)
        if opt is None:
            continue
        if opt.default is None and not opt.derived and f.default is not dataclasses.MISSING:
            default = f.default.value if hasattr(f.default, "value") else f.default
            opt = dataclasses.replace(opt, default=default)
        out.append(opt)
    return tuple(out)


def bounds(options) -> dict:
    """``{name: (lo, hi)}`` of the options that have :attr:`Option.bounds`, for their range checks."""
    return {o.name: o.bounds for o in options if o.bounds}


def options_table(options) -> str:
    """A Markdown table of ``options``: flag, allowed values, unit, default, meaning."""
    lines = ["| option | values | unit | default | meaning |", "|---|---|---|---|---|"]
    for o in options:
        cells = (f"`{o.cli_flag}`", o.range_text or o.kind.__name__, o.unit or "-", o.describe_default(), o.help_text)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
