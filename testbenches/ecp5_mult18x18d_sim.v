// Behavioural simulation model of the Lattice ECP5 MULT18X18D (sysDSP 18 x 18 multiplier), for the
// gate-level co-simulation of `lnsim synth`'s ECP5 netlists (tests/test_synth_netlist.py).
//
// Yosys ships only a blackbox of this cell (share/ecp5/cells_bb.v), so this model covers exactly the
// configurations lnsim's netlists use, and refuses every other one (an elaboration error, or $fatal at run
// time for pin values), so that it can never silently mis-model a netlist:
//
//   * synth_ecp5's multiplier (techlibs/lattice/dsp_map_18x18.v): operands on A0..A17 and B0..B17, signed
//     or unsigned by the SIGNEDA / SIGNEDB pins (tied to constants there), SOURCEA = SOURCEB = 0 (parallel
//     inputs, not the shift chains), C0..C17 tied 0 (with SOURCEB_MODE = "B_SHIFT" and SOURCEB = 0 they do
//     not reach the multiplier), every register bypassed (all REG_*_CLK = "NONE"): P0..P35 = A * B.
//   * lnsim.synth.pack_mult_output_registers: the same with the output register on, REG_OUTPUT_CLK = "CLK0",
//     REG_OUTPUT_CE = "CE0", REG_OUTPUT_RST = "RST0", GSR = "DISABLED": P0..P35 is A * B registered on the
//     rising edge of CLK0 when CE0 is 1. RST0 (tied 0 by the packer) clears the register, with priority over
//     CE0, on the clock edge (RESETMODE = "SYNC", the default) or at once (RESETMODE = "ASYNC").
//
// Semantics, as Lattice's own simulation library for the cell has them (MULT18X18D.v, "Simulation Library
// File for MULT18X18D in ECP5U/M", shipped with Diamond) and FPGA-TN-02205 ("ECP5 and ECP5-5G sysDSP Usage
// Guide") describes them: with SIGNEDx = 1 an operand is 18-bit two's complement, else unsigned; the product
// is the low 36 bits of the product of the two operands extended to 36 bits; a register's reset has priority
// over its clock enable; registers power up (PUR) cleared. With CLKn_DIV = "ENABLED" (the default, and what
// nextpnr writes when the parameter is absent) Lattice's model clocks a register once per rising edge of
// CLKn; "DISABLED" is not modelled. GSR only adds the global set/reset, which a simulation never asserts.
//
// Integer arithmetic only.

module MULT18X18D (
    input A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
    input B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
    input C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input CLK0, CE0, RST0,
    output P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18,
    output P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0
);
    // The cell's parameters and defaults, as in Yosys's cells_bb.v.
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_INPUTC_CE = "CE0";
    parameter REG_INPUTC_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter GSR = "ENABLED";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    parameter RESETMODE = "SYNC";

    localparam REGISTERED = REG_OUTPUT_CLK == "CLK0";
    localparam OK_INPUT_REGS = REG_INPUTA_CLK == "NONE" && REG_INPUTB_CLK == "NONE" && REG_INPUTC_CLK == "NONE"
                               && REG_PIPELINE_CLK == "NONE";
    localparam OK_OUTPUT_REG = REG_OUTPUT_CLK == "NONE" || (REGISTERED && REG_OUTPUT_CE == "CE0"
                                                            && REG_OUTPUT_RST == "RST0" && CLK0_DIV == "ENABLED");
    localparam OK_MODE = MULT_BYPASS == "DISABLED" && SOURCEB_MODE == "B_SHIFT" && HIGHSPEED_CLK == "NONE"
                         && CAS_MATCH_REG == "FALSE" && (RESETMODE == "SYNC" || RESETMODE == "ASYNC")
                         && (GSR == "ENABLED" || GSR == "DISABLED");

    // An elaboration error (fatal with Verilator's -Werror-USERERROR, as the co-simulation builds it) ...
    generate
        if (!OK_INPUT_REGS)
            $error("MULT18X18D model: REG_INPUTA/B/C_CLK and REG_PIPELINE_CLK must be NONE (not modelled)");
        if (!OK_OUTPUT_REG)
            $error("MULT18X18D model: REG_OUTPUT_CLK=%s; modelled: NONE, or CLK0 with CE0, RST0, CLK0_DIV=ENABLED",
                   REG_OUTPUT_CLK);
        if (!OK_MODE)
            $error("MULT18X18D model: MULT_BYPASS, SOURCEB_MODE, HIGHSPEED_CLK, CAS_MATCH_REG, RESETMODE or GSR %s",
                   "has a value that is not modelled");
    endgenerate
    // ... and, for a build that lets elaboration errors pass, a stop at time 0.
    initial
        if (!(OK_INPUT_REGS && OK_OUTPUT_REG && OK_MODE))
            $fatal(1, "MULT18X18D model: a configuration it does not model (see the elaboration messages)");

    // The shift-chain inputs (SRIA, SRIB) are not modelled: a netlist that selects them must not pass.
    always @(*)
        if (SOURCEA !== 1'b0 || SOURCEB !== 1'b0)
            $fatal(1, "MULT18X18D model: SOURCEA/SOURCEB must be 0 (shift-chain inputs are not modelled)");

    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    // One bit wider than the pins: the sign bit when SIGNEDx is 1, else 0 (unsigned).
    wire signed [18:0] a_ext = {SIGNEDA & a[17], a};
    wire signed [18:0] b_ext = {SIGNEDB & b[17], b};
    wire signed [37:0] full = a_ext * b_ext;
    wire [35:0] product = full[35:0];

    reg [35:0] p_reg = 36'd0;
    generate
        if (REGISTERED && RESETMODE == "ASYNC") begin : reg_async
            always @(posedge CLK0 or posedge RST0)
                if (RST0) p_reg <= 36'd0;
                else if (CE0) p_reg <= product;
        end else if (REGISTERED) begin : reg_sync
            always @(posedge CLK0)
                if (RST0) p_reg <= 36'd0;
                else if (CE0) p_reg <= product;
        end
    endgenerate

    wire [35:0] p = REGISTERED ? p_reg : product;
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18,
            P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p;
endmodule
