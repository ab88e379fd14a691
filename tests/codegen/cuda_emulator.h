/*
 * A CPU stand-in for the GPU, to run exprc's CUDA kernels as they are written.
 *
 * tests/codegen/cuda_emulator.py compiles a kernel program with g++ after this
 * header (as C++20): the CUDA qualifiers become plain C++, and every thread of a
 * block is a fiber (ucontext) on the calling thread. A block's fibers run one
 * after another until each returns or waits at a barrier, each warp as far as
 * it can before the next one starts (the most skew between warps a GPU could
 * show, so that a missing __syncthreads gives wrong numbers); a barrier opens when
 * every thread that has not returned waits at it (__syncthreads for the block,
 * __syncwarp and the shuffles for the 32 lanes of a warp), as on the GPU, where
 * a returned thread no longer counts. A barrier that can never open (threads
 * waiting at different ones) is reported as a deadlock, which the GPU would hang
 * on. Blocks run one at a time, so __shared__ variables are plain statics.
 *
 * What is emulated beyond the language: the warp shuffles, and the PTX
 * instructions the kernels write as inline assembly (float16 and bfloat16
 * conversions, TF32 rounding, mma.sync, ldmatrix, cp.async), whose helpers the
 * Python side replaces by the EXPRC_EMU_* functions below. The mma fragments
 * follow the PTX ISA's tables for m16n8k16 (float16, bfloat16) and m16n8k8
 * (TF32). An asynchronous copy (cp.async) happens only when its thread waits
 * for its group, so a kernel that reads shared memory before waiting reads
 * stale values here, as it could on the GPU. A misaligned ldmatrix or cp.async
 * (which would fault on the GPU) fails the launch with a message.
 */
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ucontext.h>
#include <vector>

using std::isfinite;
using std::isinf;
using std::isnan;
using std::signbit;

struct exprc_emu_dim3 { unsigned x, y, z; };

static thread_local exprc_emu_dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))

/* --- the scheduler ----------------------------------------------------------------------- */

namespace exprc_emu {

enum State { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_BARRIER, RETURNED };

struct Fiber {
    ucontext_t context;
    State state;
    exprc_emu_dim3 index;
};

typedef void (*Wrapper)(void **params);

struct AsyncCopy {
    void *to;
    const void *from;
    unsigned bytes, group;
};

struct Launch {
    std::vector<Fiber> fibers;
    std::vector<char> stacks;
    ucontext_t scheduler;
    size_t current;
    Wrapper wrapper;
    void **params;
    /* per thread, what it offers its warp: a shuffled value, the registers of an mma */
    std::vector<uint64_t> offered;
    std::vector<unsigned> fragments;
    /* per thread, its asynchronous copies not yet done, and how many groups it committed */
    std::vector<std::vector<AsyncCopy>> pending;
    std::vector<unsigned> committed;
    const char *fault;  /* the first misuse a GPU would fault on, or null */
};

static thread_local Launch *launch;

/* Note the first misuse a GPU would fault on; the launch fails with it. */
static void fault(const char *what)
{
    if (!launch->fault) launch->fault = what;
}

static const size_t STACK = 64 * 1024;

static void run_thread()
{
    launch->wrapper(launch->params);
    launch->fibers[launch->current].state = RETURNED;
}

static void wait(State at)
{
    Fiber &self = launch->fibers[launch->current];
    self.state = at;
    swapcontext(&self.context, &launch->scheduler);
}

/* Open the block's barrier if every thread that has not returned waits at it. */
static bool open_block_barrier()
{
    size_t live = 0, at_block = 0;
    for (const Fiber &t : launch->fibers) {
        live += t.state != RETURNED;
        at_block += t.state == AT_BLOCK_BARRIER;
    }
    if (!live || at_block != live) return false;
    for (Fiber &t : launch->fibers) t.state = RUNNABLE;
    return true;
}

/* Open the warp barrier of the warp whose first thread is `warp`, if every lane of it that
   has not returned waits there. */
static bool open_warp_barrier(size_t warp)
{
    std::vector<Fiber> &f = launch->fibers;
    size_t end = warp + 32 < f.size() ? warp + 32 : f.size(), lanes = 0, waiting = 0;
    for (size_t i = warp; i < end; i++) {
        lanes += f[i].state != RETURNED;
        waiting += f[i].state == AT_WARP_BARRIER;
    }
    if (!lanes || waiting != lanes) return false;
    for (size_t i = warp; i < end; i++)
        if (f[i].state == AT_WARP_BARRIER) f[i].state = RUNNABLE;
    return true;
}

/* Run one block to its end; false (with a message) on a deadlock or a fault. Each warp runs
   as far as it can, through its own barriers, before the next one starts: as far ahead of
   the others as a GPU could let it get, so that a missing __syncthreads shows. */
static bool run_block(char *error, size_t error_size)
{
    std::vector<Fiber> &f = launch->fibers;
    for (size_t i = 0; i < f.size(); i++) {
        getcontext(&f[i].context);
        f[i].context.uc_stack.ss_sp = &launch->stacks[i * STACK];
        f[i].context.uc_stack.ss_size = STACK;
        f[i].context.uc_link = &launch->scheduler;
        makecontext(&f[i].context, run_thread, 0);
        f[i].state = RUNNABLE;
        launch->pending[i].clear();
        launch->committed[i] = 0;
    }
    for (;;) {
        bool ran = false;
        for (size_t warp = 0; warp < f.size(); warp += 32) {
            size_t end = warp + 32 < f.size() ? warp + 32 : f.size();
            do {
                for (size_t i = warp; i < end; i++) {
                    if (f[i].state != RUNNABLE) continue;
                    launch->current = i;
                    threadIdx = f[i].index;
                    swapcontext(&launch->scheduler, &f[i].context);
                    ran = true;
                }
            } while (open_warp_barrier(warp));
        }
        bool done = true;
        for (const Fiber &t : f) done = done && t.state == RETURNED;
        if (launch->fault) {
            snprintf(error, error_size, "in block (%u, %u, %u): %s", blockIdx.x, blockIdx.y, blockIdx.z, launch->fault);
            return false;
        }
        if (done) return true;
        if (!open_block_barrier() && !ran) {
            snprintf(error, error_size, "deadlock in block (%u, %u, %u): threads wait at barriers that cannot open",
                     blockIdx.x, blockIdx.y, blockIdx.z);
            return false;
        }
    }
}

static int run(Wrapper wrapper, const unsigned *grid, const unsigned *block, void **params,
               char *error, size_t error_size)
{
    Launch here;
    size_t threads = (size_t)block[0] * block[1] * block[2];
    here.fibers.resize(threads);
    here.stacks.resize(threads * STACK);
    here.offered.resize(threads);
    here.fragments.resize(threads * 6);
    here.pending.resize(threads);
    here.committed.resize(threads);
    here.fault = nullptr;
    here.wrapper = wrapper;
    here.params = params;
    size_t i = 0;
    for (unsigned z = 0; z < block[2]; z++)
        for (unsigned y = 0; y < block[1]; y++)
            for (unsigned x = 0; x < block[0]; x++) here.fibers[i++].index = {x, y, z};
    Launch *outer = launch;
    launch = &here;
    blockDim = {block[0], block[1], block[2]};
    gridDim = {grid[0], grid[1], grid[2]};
    int status = 0;
    for (unsigned z = 0; z < grid[2] && !status; z++)
        for (unsigned y = 0; y < grid[1] && !status; y++)
            for (unsigned x = 0; x < grid[0] && !status; x++) {
                blockIdx = {x, y, z};
                status = run_block(error, error_size) ? 0 : 1;
            }
    launch = outer;
    return status;
}

static unsigned lane() { return (unsigned)(launch->current % 32); }

/* The value lane `source` of this warp offers (this lane's own value outside the warp). */
template <typename T>
static T exchange(T value, int source)
{
    uint64_t bits = 0;
    memcpy(&bits, &value, sizeof(T));
    launch->offered[launch->current] = bits;
    wait(AT_WARP_BARRIER);
    size_t warp = launch->current - lane();
    T out = value;
    if (source >= 0 && source < 32 && warp + source < launch->fibers.size())
        memcpy(&out, &launch->offered[warp + source], sizeof(T));
    wait(AT_WARP_BARRIER);  /* nobody offers again before everyone has read */
    return out;
}

}  // namespace exprc_emu

static inline void __syncthreads() { exprc_emu::wait(exprc_emu::AT_BLOCK_BARRIER); }
static inline void __syncwarp(unsigned = 0xffffffffu) { exprc_emu::wait(exprc_emu::AT_WARP_BARRIER); }

template <typename T>
static inline T __shfl_sync(unsigned, T value, int source, int width = 32)
{
    int base = (int)exprc_emu::lane() / width * width;
    return exprc_emu::exchange(value, base + source % width);
}

template <typename T>
static inline T __shfl_down_sync(unsigned, T value, unsigned delta, int width = 32)
{
    int l = (int)exprc_emu::lane(), top = l / width * width + width;
    return exprc_emu::exchange(value, l + (int)delta < top ? l + (int)delta : l);
}

template <typename T>
static inline T __shfl_xor_sync(unsigned, T value, int mask, int width = 32)
{
    int l = (int)exprc_emu::lane();
    return exprc_emu::exchange(value, (l ^ mask) / width == l / width ? l ^ mask : l);
}

/* --- CUDA's device functions ------------------------------------------------------------ */

/* Blocks run one after another, each thread until it waits: memory is always coherent, and
   an atomic is a plain read and write. */
static inline void __threadfence() {}
template <typename T> static inline T atomicAdd(T *address, T value) { T old = *address; *address = old + value; return old; }

static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
static inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, 4); return i; }
// Arithmetic rounded as written (no fused multiply-add): on the CPU each operation rounds anyway.
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline float __uint_as_float(unsigned i) { float f; memcpy(&f, &i, 4); return f; }
static inline double __longlong_as_double(long long i) { double d; memcpy(&d, &i, 8); return d; }
static inline long long __double_as_longlong(double d) { long long i; memcpy(&i, &d, 8); return i; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
static inline float __fdividef(float a, float b) { return a / b; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
template <typename T> static inline T __ldg(const T *p) { return *p; }

/* --- the PTX the kernels write as inline assembly --------------------------------------- */

static inline float EXPRC_EMU_half_to_float(unsigned short h) { _Float16 v; memcpy(&v, &h, 2); return (float)v; }
static inline unsigned short EXPRC_EMU_float_to_half(float f) { _Float16 v = (_Float16)f; unsigned short h; memcpy(&h, &v, 2); return h; }
static inline unsigned short EXPRC_EMU_double_to_half(double d) { _Float16 v = (_Float16)d; unsigned short h; memcpy(&h, &v, 2); return h; }

static inline float EXPRC_EMU_bf16_to_float(unsigned short h) { return __uint_as_float((unsigned)h << 16); }

/* cvt.rn.bf16.f32: to nearest, ties to even; a NaN stays a (quiet) NaN */
static inline unsigned short EXPRC_EMU_float_to_bf16(float f)
{
    unsigned bits = __float_as_uint(f);
    if (isnan(f)) return (unsigned short)((bits >> 16) | 0x40);
    bits += 0x7fff + ((bits >> 16) & 1);
    return (unsigned short)(bits >> 16);
}

/* cvt.rna.tf32.f32: to nearest, ties away from zero, 10 bits of mantissa */
static inline unsigned EXPRC_EMU_float_to_tf32(float f)
{
    unsigned bits = __float_as_uint(f);
    if (isnan(f) || isinf(f)) return bits;
    return (bits + 0x1000u) & 0xffffe000u;
}

namespace exprc_emu {

/* d += a @ b over one warp: each lane offers its registers, every lane rebuilds the tiles
   (16 x k of A, k x 8 of B) and computes its four elements of D. `tf32`: m16n8k8 with
   32-bit elements; otherwise m16n8k16 with two 16-bit elements per register. */
static void mma(float *d, const unsigned *a, const unsigned *b, bool tf32, bool bf16)
{
    unsigned *mine = &launch->fragments[launch->current * 6];
    memcpy(mine, a, 4 * sizeof(unsigned));
    memcpy(mine + 4, b, 2 * sizeof(unsigned));
    wait(AT_WARP_BARRIER);
    const unsigned *warp = &launch->fragments[(launch->current - lane()) * 6];
    const int K = tf32 ? 8 : 16;
    float A[16][16], B[16][8];
    for (int l = 0; l < 32; l++) {
        int group = l >> 2, in_group = l % 4;
        if (tf32) {
            for (int i = 0; i < 4; i++) {
                int row = group + ((i & 1) ? 8 : 0), col = in_group + (i >= 2 ? 4 : 0);
                A[row][col] = __uint_as_float(warp[l * 6 + i]);
            }
            for (int i = 0; i < 2; i++) B[in_group + (i ? 4 : 0)][group] = __uint_as_float(warp[l * 6 + 4 + i]);
        } else {
            for (int i = 0; i < 8; i++) {
                unsigned short bits = (unsigned short)(warp[l * 6 + i / 2] >> (16 * (i & 1)));
                int row = group + ((i < 2 || (i >= 4 && i < 6)) ? 0 : 8);
                int col = in_group * 2 + (i & 1) + (i >= 4 ? 8 : 0);
                A[row][col] = bf16 ? EXPRC_EMU_bf16_to_float(bits) : EXPRC_EMU_half_to_float(bits);
            }
            for (int i = 0; i < 4; i++) {
                unsigned short bits = (unsigned short)(warp[l * 6 + 4 + i / 2] >> (16 * (i & 1)));
                int row = in_group * 2 + (i & 1) + (i >= 2 ? 8 : 0);
                B[row][group] = bf16 ? EXPRC_EMU_bf16_to_float(bits) : EXPRC_EMU_half_to_float(bits);
            }
        }
    }
    int l = (int)lane(), group = l >> 2, in_group = l % 4;
    for (int i = 0; i < 4; i++) {
        int row = group + (i >= 2 ? 8 : 0), col = in_group * 2 + (i & 1);
        double sum = d[i];
        for (int kk = 0; kk < K; kk++) sum += (double)A[row][kk] * B[kk][col];
        d[i] = (float)sum;
    }
    wait(AT_WARP_BARRIER);  /* nobody offers again before everyone has read */
}

}  // namespace exprc_emu

static inline void EXPRC_EMU_mma_f16(float *d, const unsigned *a, const unsigned *b) { exprc_emu::mma(d, a, b, false, false); }
static inline void EXPRC_EMU_mma_bf16(float *d, const unsigned *a, const unsigned *b) { exprc_emu::mma(d, a, b, false, true); }
static inline void EXPRC_EMU_mma_tf32(float *d, const unsigned *a, const unsigned *b) { exprc_emu::mma(d, a, b, true, false); }

/* --- ldmatrix and cp.async (sm_80) -------------------------------------------------------- */

namespace exprc_emu {

/* ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16: lanes 8 j .. 8 j + 7 give the rows of
   matrix j (16 bytes each); lane l gets in d[j] the elements (l / 4, 2 (l % 4) and the next)
   of matrix j, or with `trans` those of its transpose, the lower-indexed in the low half. */
static void ldmatrix(unsigned *d, const void *row, bool trans)
{
    if ((uintptr_t)row % 16) fault("ldmatrix: a row address that is not a multiple of 16 bytes");
    launch->offered[launch->current] = (uint64_t)(uintptr_t)row;
    wait(AT_WARP_BARRIER);
    const uint64_t *rows = &launch->offered[launch->current - lane()];
    unsigned l = lane();
    for (int j = 0; j < 4; j++) {
        unsigned short lo, hi;
        if (trans) {
            lo = ((const unsigned short *)(uintptr_t)rows[8 * j + 2 * (l % 4)])[l / 4];
            hi = ((const unsigned short *)(uintptr_t)rows[8 * j + 2 * (l % 4) + 1])[l / 4];
        } else {
            const unsigned short *r = (const unsigned short *)(uintptr_t)rows[8 * j + l / 4];
            lo = r[2 * (l % 4)];
            hi = r[2 * (l % 4) + 1];
        }
        d[j] = lo | (unsigned)hi << 16;
    }
    wait(AT_WARP_BARRIER);  /* nobody offers again before everyone has read */
}

/* cp.async.cg.shared.global, 16 bytes of which `bytes` are read (the rest zeros): noted in
   the thread's open group, done when the thread waits for that group. */
static void copy_async(void *to, const void *from, unsigned bytes)
{
    if (((uintptr_t)to | (uintptr_t)from) % 16) fault("cp.async: an address that is not a multiple of 16 bytes");
    if (bytes != 0 && bytes != 16) fault("cp.async: a source size other than 0 or 16 bytes");
    launch->pending[launch->current].push_back({to, from, bytes, launch->committed[launch->current]});
}

/* cp.async.wait_group n: every copy of this thread's committed groups but the newest n done. */
static void wait_copies(unsigned newest_left)
{
    std::vector<AsyncCopy> &pending = launch->pending[launch->current], left;
    unsigned committed = launch->committed[launch->current];
    for (const AsyncCopy &c : pending) {
        if (c.group + newest_left < committed) {
            memcpy(c.to, c.from, c.bytes);
            memset((char *)c.to + c.bytes, 0, 16 - c.bytes);
        } else {
            left.push_back(c);
        }
    }
    pending.swap(left);
}

}  // namespace exprc_emu

static inline void EXPRC_EMU_ldmatrix(unsigned *d, const void *row) { exprc_emu::ldmatrix(d, row, false); }
static inline void EXPRC_EMU_ldmatrix_trans(unsigned *d, const void *row) { exprc_emu::ldmatrix(d, row, true); }
static inline void EXPRC_EMU_copy_async(void *to, const void *from, unsigned bytes) { exprc_emu::copy_async(to, from, bytes); }
static inline void EXPRC_EMU_copies_commit() { exprc_emu::launch->committed[exprc_emu::launch->current]++; }
static inline void EXPRC_EMU_copies_wait_but_newest() { exprc_emu::wait_copies(1); }
static inline void EXPRC_EMU_copies_wait_all() { exprc_emu::wait_copies(0); }
