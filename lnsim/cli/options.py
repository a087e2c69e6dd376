"""Command-line flags made from option metadata (:class:`lnsim.spec.Option`): the spec's flags, named alike in
every subcommand, the training flags of ``train`` and ``sweep``, and the parsed values back as keywords."""

from __future__ import annotations

import argparse

from lnsim.spec import LANES, SPEC_OPTIONS, Option, Spec

__all__ = ["int_or_raw", "float_or_raw", "add_option", "spec_parent", "spec_values", "spec_from_args"]


def int_or_raw(text: str):
    """Parse an int, or pass the raw text on so the option's check names it in its own message."""
    try:
        return int(text)
    except ValueError:
        return text


def float_or_raw(text: str):
    """Parse a float, or pass the raw text on so the option's check names it in its own message."""
    try:
        return float(text)
    except ValueError:
        return text


_PARSE = {int: int_or_raw, float: float_or_raw, str: None}


def add_option(group, opt: Option, *, default=None) -> None:
    """Add ``opt``'s flag to ``group`` (a parser or argument group). The parsed value is None when the flag is
    not given (so the spec or the configuration applies its default), unless ``default`` is given; a bool
    option is a switch to the other value than its default (``--no-...`` for one that defaults to True)."""
    text = opt.help_text
    if opt.kind is bool:
        action = "store_false" if opt.default else "store_true"
        group.add_argument(opt.cli_flag, dest=opt.name, action=action, default=default, help=text)
        return
    kwargs = {"type": _PARSE[opt.kind]} if _PARSE[opt.kind] else {}
    if opt.metavar:
        kwargs["metavar"] = opt.metavar
    group.add_argument(opt.cli_flag, dest=opt.name, default=default, help=text, **kwargs)


def spec_parent(hardware: bool = False) -> argparse.ArgumentParser:
    """A parent parser with the spec's flags (:data:`lnsim.spec.SPEC_OPTIONS`; ``hardware`` adds ``--lanes``)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("spec")
    for opt in SPEC_OPTIONS:
        add_option(g, opt)
    if hardware:
        add_option(g, LANES, default=LANES.default)
    return p


def spec_values(args: argparse.Namespace) -> dict:
    """The spec options of parsed arguments, as keywords of :meth:`lnsim.spec.Spec.from_options`."""
    return {opt.name: getattr(args, opt.name) for opt in SPEC_OPTIONS}


def spec_from_args(args: argparse.Namespace) -> Spec:
    """The validated :class:`~lnsim.spec.Spec` of parsed arguments."""
    return Spec.from_options(**spec_values(args))
