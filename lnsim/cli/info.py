"""``lnsim info``: a spec's derived quantities and table sizes, as a table and optionally as JSON."""

from __future__ import annotations

from lnsim import tables
from lnsim.cli.options import add_option, spec_parent, spec_values
from lnsim.cli.output import check_outputs, text_stream, warn_spec, write_json
from lnsim.spec import DYNAMIC_RANGE, Spec

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    """Register ``info`` on ``sub`` (from ``add_subparsers``)."""
    p = sub.add_parser("info", parents=[spec_parent()], help="print a spec's derived quantities and table sizes",
                       description="Print a spec's derived quantities and table sizes.")
    add_option(p, DYNAMIC_RANGE)
    p.add_argument("--json", metavar="FILE", help="also write them as JSON (- for stdout; the table then goes to stderr)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Print the table of the spec named by ``args``; write ``{"spec", "table_bits", "bits_per_weight"}`` to
    ``--json`` (``bits_per_weight``: :meth:`lnsim.spec.BitsPerWeight.to_dict`, the parts and their ``total``)."""
    spec = Spec.from_options(**spec_values(args), dynamic_range=args.dynamic_range)
    check_outputs(json=args.json)
    warn_spec(spec)
    tb = tables.table_bits(spec)
    rows = spec.info_rows(tb)
    width = max(len(name) for name, _ in rows)
    out = text_stream(args.json)
    for name, value in rows:
        print(f"{name:<{width}}  {value}", file=out)
    if args.json:
        write_json(args.json, {"spec": spec.summary(), "table_bits": tb, "bits_per_weight": spec.bits_per_weight.to_dict()})
    return 0
