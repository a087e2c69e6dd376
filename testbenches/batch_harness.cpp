// Batch co-simulation harness of the update unit (lnsim_testbenches.batch): the Verilated model driven from C++,
// loaded as a shared library with ctypes. No Python in the per-cycle loop.
//
// The host hands over a chunk of beats as one uint32 array, row r = [log_eta, log_bc, then per lane sw, k, g, st],
// and gets back row r = [per lane k, st, nan, inf]. The harness packs and unpacks the payload ports itself from the
// lane layouts it is given (offsets and widths from lnsim_rtl's Widths), so one source serves every configuration:
// the ports' C++ types (CData .. VlWide<N>) are handled by overloads.
//
// The stream protocol is the cocotb bench's (streams.run_stream): per cycle, after the falling edge the driver offers
// the next unsent beat (i__valid, as the stall pattern says) and the monitor sets o__ready; the combinational values
// settle (eval); a beat is accepted if i__valid & i__ready and received if o__valid & o__ready; then the rising edge.
// A reset (at the chunk's cycle c, for l cycles: both sides idle) makes the driver resend every beat not yet
// received. Outputs are taken in order; the host compares them with the golden model in NumPy.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "Vtop.h"
#include "verilated.h"

// The ports' C++ member names (Verilator's encoding of the Verilog names) come as -D definitions from the build
// (lnsim_testbenches.batch_build.port_defines).
#if !defined(LNSIM_PORT_CLK) || !defined(LNSIM_PORT_I_PAYLOAD) || !defined(LNSIM_PORT_O_PAYLOAD)
#error "build through lnsim_testbenches.batch_build: the port names are -D definitions"
#endif

namespace {

constexpr int kMaxWords = 64;  // payload words (32 bits) of the widest port: 2048 bits

template <class T>
void put(T& port, const uint32_t* w) {
    port = static_cast<T>(static_cast<uint64_t>(w[0]) | (sizeof(T) > 4 ? static_cast<uint64_t>(w[1]) << 32 : 0));
}
template <std::size_t N>
void put(VlWide<N>& port, const uint32_t* w) {
    for (std::size_t i = 0; i < N; ++i) port[i] = w[i];
}
template <class T>
void get(const T& port, uint32_t* w) {
    uint64_t v = static_cast<uint64_t>(port);
    w[0] = static_cast<uint32_t>(v);
    w[1] = static_cast<uint32_t>(v >> 32);
}
template <std::size_t N>
void get(const VlWide<N>& port, uint32_t* w) {
    for (std::size_t i = 0; i < N; ++i) w[i] = port[i];
}

inline void insert(uint32_t* w, int offset, int width, uint32_t value) {
    uint64_t v = static_cast<uint64_t>(value) & (width >= 32 ? 0xffffffffull : ((1ull << width) - 1));
    int i = offset >> 5, s = offset & 31;
    uint64_t shifted = v << s;
    w[i] |= static_cast<uint32_t>(shifted);
    if (s + width > 32) w[i + 1] |= static_cast<uint32_t>(shifted >> 32);
}
inline uint32_t extract(const uint32_t* w, int offset, int width) {
    int i = offset >> 5, s = offset & 31;
    uint64_t v = static_cast<uint64_t>(w[i]) >> s;
    if (s + width > 32) v |= static_cast<uint64_t>(w[i + 1]) << (32 - s);
    return static_cast<uint32_t>(v & (width >= 32 ? 0xffffffffull : ((1ull << width) - 1)));
}

// The cocotb bench's stall pattern, with its own generator: segments of 64..4096 cycles, each with an
// on-probability drawn from the profile (1.0 = never stall).
struct Stalls {
    uint64_t s;
    const double* profile;
    int n_profile;
    int64_t left = 0;
    uint32_t threshold = 0xffffffffu;
    bool always = true;
    uint64_t next64() {  // xorshift64*
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 2685821657736338717ull;
    }
    bool on() {
        if (left == 0) {
            double p = profile[next64() % static_cast<uint64_t>(n_profile)];
            left = 64 + static_cast<int64_t>(next64() % 4033);
            always = p >= 1.0;
            threshold = static_cast<uint32_t>(p * 4294967296.0);
        }
        --left;
        return always || static_cast<uint32_t>(next64() >> 32) < threshold;
    }
};

struct Unit {
    VerilatedContext* context;
    Vtop* top;
};

}  // namespace

extern "C" {

// Layout: [lanes, L_in, L_out, then (offset, width) of sw, k, g, st, then of k, st, nan, inf]: 19 ints.
struct Stats {
    int64_t cycles;
    int64_t received;       // beats received (== n unless timed out)
    int64_t first_accept;   // cycle of the first accepted beat (-1: none)
    int64_t first_valid;    // cycle of the first valid output (-1: none)
    int64_t bubbles;        // cycles with valid input, ready output and the input not accepted (outside resets)
    int64_t resent;         // beats in flight at a reset, sent again
    int64_t early_outputs;  // valid outputs after a reset before any resent beat could arrive
    int64_t timeout;        // 1 if max_cycles ran out
};

void* lnsim_batch_new(void) {
    Unit* u = new Unit;
    u->context = new VerilatedContext;
    u->top = new Vtop{u->context};
    Vtop* t = u->top;
    t->LNSIM_PORT_CLK = 0;
    t->LNSIM_PORT_RST = 1;
    t->LNSIM_PORT_I_VALID = 0;
    t->LNSIM_PORT_O_READY = 0;
    t->eval();
    for (int i = 0; i < 3; ++i) {  // three cycles in reset, both streams idle (streams.start_in_reset)
        t->LNSIM_PORT_CLK = 1;
        t->eval();
        t->LNSIM_PORT_CLK = 0;
        t->eval();
    }
    t->LNSIM_PORT_RST = 0;
    t->eval();
    return u;
}

void lnsim_batch_free(void* handle) {
    Unit* u = static_cast<Unit*>(handle);
    u->top->final();
    delete u->top;
    delete u->context;
    delete u;
}

int lnsim_batch_port_words(void* handle) {
    (void)handle;
    return kMaxWords;
}

// Stream n beats of `in` through the unit; the received beats go to `out` in order. With `stall_seed` 0 there are
// no stalls; else both sides stall by `profile` (n_profile probabilities), the output side with a generator seeded
// from stall_seed + 1. resets: n_resets pairs (cycle, length), sorted. latency: cycles the output stays quiet after
// a reset before a resent beat can arrive. Returns 0, or -1 if a port is wider than the harness handles.
int lnsim_batch_run(void* handle, const int32_t* layout, const uint32_t* in, uint32_t* out, int64_t n,
                    uint64_t stall_seed, const double* profile, int n_profile, const int64_t* resets, int n_resets,
                    int64_t latency, int64_t max_cycles, Stats* stats) {
    Unit* u = static_cast<Unit*>(handle);
    Vtop* t = u->top;
    const int lanes = layout[0], L_in = layout[1], L_out = layout[2];
    const int32_t* fin = layout + 3;
    const int32_t* fout = layout + 11;
    const int in_words = (lanes * L_in + 31) / 32, out_words = (lanes * L_out + 31) / 32;
    if (in_words + 1 > kMaxWords || out_words + 1 > kMaxWords) return -1;
    const int row_in = 2 + 4 * lanes, row_out = 4 * lanes;
    static const double kNever[1] = {1.0};
    Stalls drive{stall_seed * 2 + 1, stall_seed ? profile : kNever, stall_seed ? n_profile : 1};
    Stalls take{stall_seed * 2 + 2, stall_seed ? profile : kNever, stall_seed ? n_profile : 1};
    for (int i = 0; i < 8; ++i) drive.next64(), take.next64();

    uint32_t wi[kMaxWords], wo[kMaxWords];
    int64_t sent = 0, received = 0, cycle = 0, loaded = -1;
    int64_t first_accept = -1, first_valid = -1, bubbles = 0, resent = 0, early = 0;
    int64_t quiet_until = -1;  // -1: no constraint; INT64_MAX: until the next accept
    const int64_t kInf = INT64_MAX;
    int r_next = 0;
    int64_t reset_left = 0;
    bool timeout = false;
    while (received < n) {
        t->LNSIM_PORT_CLK = 0;
        t->eval();
        bool enabled = true;
        if (r_next < n_resets && cycle >= resets[2 * r_next] && reset_left == 0) {
            reset_left = resets[2 * r_next + 1];
            ++r_next;
            t->LNSIM_PORT_RST = 1;
            enabled = false;
        } else if (reset_left) {
            --reset_left;
            if (reset_left == 0) {
                t->LNSIM_PORT_RST = 0;
                resent += sent - received;
                sent = received;  // resend every beat not yet received
                quiet_until = kInf;
            } else {
                enabled = false;
            }
        }
        bool v = enabled && sent < n && drive.on();
        if (v && loaded != sent) {
            const uint32_t* row = in + sent * row_in;
            std::memset(wi, 0, sizeof(wi));
            for (int j = 0; j < lanes; ++j)
                for (int f = 0; f < 4; ++f) insert(wi, j * L_in + fin[2 * f], fin[2 * f + 1], row[2 + 4 * j + f]);
            put(t->LNSIM_PORT_I_PAYLOAD, wi);
            put(t->LNSIM_PORT_LOG_ETA, row);
            put(t->LNSIM_PORT_LOG_BC, row + 1);
            loaded = sent;
        }
        t->LNSIM_PORT_I_VALID = v;
        bool r = enabled && take.on();
        t->LNSIM_PORT_O_READY = r;
        t->eval();
        bool accepted = v && t->LNSIM_PORT_I_READY;
        if (accepted) {
            if (quiet_until == kInf) quiet_until = cycle + latency;
            if (first_accept < 0) first_accept = cycle;
            ++sent;
        }
        bool ovalid = t->LNSIM_PORT_O_VALID;
        if (ovalid) {
            if (first_valid < 0) first_valid = cycle;
            if (quiet_until >= 0 && cycle < quiet_until && !reset_left) {
                ++early;
                quiet_until = -1;
            }
            if (r) {
                std::memset(wo, 0, sizeof(wo));
                get(t->LNSIM_PORT_O_PAYLOAD, wo);
                uint32_t* row = out + received * row_out;
                for (int j = 0; j < lanes; ++j)
                    for (int f = 0; f < 4; ++f) row[4 * j + f] = extract(wo, j * L_out + fout[2 * f], fout[2 * f + 1]);
                ++received;
            }
        }
        if (v && r && !accepted && !reset_left) ++bubbles;
        t->LNSIM_PORT_CLK = 1;
        t->eval();
        ++cycle;
        if (cycle >= max_cycles) {
            timeout = true;
            break;
        }
    }
    // Drain nothing: every beat sent has been received (received == n), so the pipeline is empty of valid beats.
    stats->cycles = cycle;
    stats->received = received;
    stats->first_accept = first_accept;
    stats->first_valid = first_valid;
    stats->bubbles = bubbles;
    stats->resent = resent;
    stats->early_outputs = early;
    stats->timeout = timeout;
    return 0;
}

}  // extern "C"
