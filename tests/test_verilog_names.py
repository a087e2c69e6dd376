"""The generated Verilog names every module and instance with a plain identifier (docs/rtl.md, "Module names").

Amaranth names a submodule by its dotted hierarchy path (``\\lnsim_update_unit.lane0_ema_align``, an escaped
identifier); :func:`lnsim_rtl.verilog.plain_module_names` joins the path's names with ``__`` instead. The
logic is untouched: with the names mapped back, the text is Amaranth's own ``verilog.convert`` byte for byte.
"""

from __future__ import annotations

import re

import pytest
from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Module, Signal
from lnsim_rtl import DecodeUnit, UpdateUnit, generate_decoder_verilog, generate_verilog
from lnsim_rtl.verilog import PLAIN_NAME, convert, plain_module_names

from lnsim.cli import main
from lnsim.spec import LNSFormat, MadamConfig, Spec

PLAIN = r"[A-Za-z_][A-Za-z0-9_]*"
_POW2 = LNSFormat(bits=8, base="pow2", frac_bits=4)

#: (id, Verilog generator) for a couple of specs, lane counts and both units.
DESIGNS = [
    ("update-B12-x1", lambda: generate_verilog(Spec(LNSFormat(bits=12, eta0=0.001)))),
    ("update-B8-pow2-fp16-x2-named", lambda: generate_verilog(
        Spec(_POW2, MadamConfig.from_rungs(_POW2, 1, 8, grad_format="float16")), lanes=2, name="madam_core")),
    ("update-B4-fp32-x3", lambda: generate_verilog(
        Spec(LNSFormat(bits=4, eta0=0.1), MadamConfig(eta=0.1, eta_star=1.5, grad_format="float32")), lanes=3)),
    ("decode-B12-pow2-x2", lambda: generate_decoder_verilog(LNSFormat(bits=12, base="pow2", frac_bits=6), lanes=2)),
]


def _modules(text: str) -> list[str]:
    """The name after each ``module`` keyword, as written (an escaped one with its backslash)."""
    return re.findall(r"^module\s+(\\\S+|[^\s(]+)", text, re.MULTILINE)


def _instances(text: str, modules: set) -> list[tuple[str, str]]:
    """``(module, instance)`` of every instantiation of one of ``modules`` (``  <module> <instance> (``)."""
    found = re.findall(r"^\s+(\\\S+|[A-Za-z_][\w$]*)\s+(\\\S+|[A-Za-z_][\w$]*)\s*\($", text, re.MULTILINE)
    return [(m, i) for m, i in found if m in modules]


@pytest.fixture(scope="module", params=DESIGNS, ids=[d[0] for d in DESIGNS])
def design(request):
    return request.param[1]()


def test_every_module_and_instance_name_is_plain(design):
    modules = _modules(design)
    assert len(modules) > 1 and all(re.fullmatch(PLAIN, m) for m in modules), modules
    assert len(set(modules)) == len(modules)
    instances = _instances(design, set(modules))
    # Every module but the top is instantiated, and every instance is named plainly.
    assert {m for m, _ in instances} == set(modules[1:])
    assert all(re.fullmatch(PLAIN, i) for _, i in instances), instances
    # No escaped identifier names a module anywhere (the old form: a backslash, the top's name, a dot).
    assert not re.search(rf"\\{modules[0]}\.", design)


def test_the_scheme_is_the_instance_path_joined_by_double_underscores(design):
    top, *subs = _modules(design)
    parent = {m: i for m, i in _instances(design, set(subs))}
    for sub in subs:
        assert sub.startswith(f"{top}__"), sub
        assert sub.split("__")[-1] == parent[sub]  # the last name on the path is the instance's own


def test_names_are_the_same_every_run():
    spec = Spec(LNSFormat(bits=12, eta0=0.001))
    assert generate_verilog(spec, lanes=2) == generate_verilog(spec, lanes=2)


@pytest.mark.parametrize("unit, name", [
    (lambda: UpdateUnit(Spec(LNSFormat(bits=12, eta0=0.001)), lanes=2), "lnsim_update_unit"),
    (lambda: DecodeUnit(LNSFormat(bits=10, eta0=0.004), lanes=2), "dec__top"),
], ids=["update", "decode"])
def test_only_the_names_differ_from_amaranths_own_conversion(unit, name):
    ours = convert(unit(), name)
    theirs = verilog.convert(unit(), name=name, emit_src=False)
    assert ours != theirs
    # Amaranth's name for module top__a__b is the escaped \top.a.b (followed by a space, as Yosys writes it).
    back = re.sub(rf"\b{name}__(\w+)", lambda m: f"\\{name}.{m.group(1).replace('__', '.')} ", ours)
    assert back == theirs


class _Wrap(Elaboratable):
    """A module holding one submodule, under ``name`` (or unnamed, which Amaranth calls ``U$0``)."""

    def __init__(self, name=None):
        self.name, self.a, self.y = name, Signal(4), Signal(4)

    def elaborate(self, platform):
        m, inner = Module(), Module()
        inner.d.comb += self.y.eq(self.a + 1)
        if self.name is None:
            m.submodules += inner
        else:
            m.submodules[self.name] = inner
        return m


@pytest.mark.parametrize("sub, message", [
    (None, r"module 'top\.U\$0' below 'top': .* \(not 'U\$0'\)"),
    ("a__b", r"module 'top\.a__b' below 'top': .* \(not 'a__b'\)"),
    ("_a", r"\(not '_a'\)"),
    ("a_", r"\(not 'a_'\)"),
], ids=["unnamed", "double underscore", "leading underscore", "trailing underscore"])
def test_submodule_names_that_could_collide_are_refused(sub, message):
    from amaranth.back import rtlil

    w = _Wrap(sub)
    text = rtlil.convert(w, name="top", ports=[w.a, w.y], emit_src=False)
    with pytest.raises(RuntimeError, match=message):
        plain_module_names(text, "top")


def test_a_plain_submodule_name_is_renamed():
    from amaranth.back import rtlil

    w = _Wrap("inc_1")
    text = plain_module_names(rtlil.convert(w, name="top", ports=[w.a, w.y], emit_src=False), "top")
    assert "module \\top__inc_1\n" in text and "cell \\top__inc_1 \\inc_1\n" in text and "top." not in text


@pytest.mark.parametrize("name", ["9unit", "a.b", "unit$x", "café", "", "a b"])
def test_convert_refuses_a_name_that_needs_escaping(name):
    assert not PLAIN_NAME.fullmatch(name)
    with pytest.raises(ValueError, match=r"name must be a Verilog identifier \(letters, digits, _; not a digit "
                                         r"first\), not "):
        generate_verilog(Spec(LNSFormat(bits=12, eta0=0.001)), name=name)


# -- The command line: (command, exit status, the one line on stderr) ---------------------------------------------

_BAD_NAME = r"lnsim: error: name must be a plain Verilog identifier \(letters, digits, _; not a digit first\), not {}"

CLI = [
    (["verilog", "--name", "9unit"], 2, _BAD_NAME.format(r"'9unit'")),
    (["verilog", "--name", "unit$x"], 2, _BAD_NAME.format(r"'unit\$x'")),
    (["verilog", "--name", "café"], 2, _BAD_NAME.format(r"'café'")),
    (["verilog", "--name", "top.unit"], 2, _BAD_NAME.format(r"'top\.unit'")),
    (["verilog", "--bits", "8", "--eta0", "0.016", "--name", "madam_core", "-o", "{tmp}/u.v"], 0,
     r"wrote .*/u\.v: module madam_core, B=8 eta0=0\.016, 1 lane\(s\)"),
]


@pytest.mark.parametrize("argv, status, line", CLI, ids=[" ".join(a) for a, _, _ in CLI])
def test_cli_names(argv, status, line, tmp_path, capsys):
    try:
        code = main([a.format(tmp=tmp_path) for a in argv])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == status
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.fullmatch(line, err.rstrip("\n")), err
    if status == 0:
        modules = _modules((tmp_path / "u.v").read_text())
        assert modules[0] == "madam_core" and all(m.startswith("madam_core__lane0_") for m in modules[1:])
