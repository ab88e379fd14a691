/* Some formulas ignore an argument (isnan of an integer is 0): the load of it is then
   unused, which is not worth a warning. */
#pragma nv_diag_suppress 177

/* Fixed-width integers and the macros of <stdint.h> and <math.h> the kernels use:
   NVRTC compiles without the system's headers. */
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long long int64_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#define INT64_C(v) (v##LL)
#define UINT64_C(v) (v##ULL)
#define INT8_MIN (-128)
#define INT8_MAX 127
#define INT16_MIN (-32768)
#define INT16_MAX 32767
#define INT32_MIN (-2147483647 - 1)
#define INT32_MAX 2147483647
#define INT64_MIN (-INT64_C(9223372036854775807) - 1)
#define INT64_MAX INT64_C(9223372036854775807)
#define UINT8_MAX 255
#define UINT16_MAX 65535
#define UINT32_MAX 4294967295u
#define UINT64_MAX UINT64_C(18446744073709551615)
#define NAN __int_as_float(0x7fffffff)
#define INFINITY __int_as_float(0x7f800000)
#define M_LN2 0.693147180559945309417232121458176568
#define M_PI 3.14159265358979323846264338327950288

/* Threads per block (see exprc.codegen.cuda.ops.THREADS); reductions need exactly this many. */
#define EXPRC_THREADS @threads@

/* N consecutive elements of an array, moved by one load or store (16 bytes at most). */
template <typename T, int N>
struct alignas(sizeof(T) * N) exprc_vec {
    T v[N];
};

/* Lane l's value from lane l + distance of its warp (exprc_shfl_down) or from lane
   `lane` (exprc_shfl), every lane of the warp taking part. The shuffles take 32- and
   64-bit values: narrower integers travel as int. */
template <typename T>
static __device__ __forceinline__ T exprc_shfl_down(T value, int distance)
{
    if constexpr (sizeof(T) < 4)
        return (T)__shfl_down_sync(0xffffffffu, (int)value, distance);
    else
        return __shfl_down_sync(0xffffffffu, value, distance);
}

template <typename T>
static __device__ __forceinline__ T exprc_shfl(T value, int lane)
{
    if constexpr (sizeof(T) < 4)
        return (T)__shfl_sync(0xffffffffu, (int)value, lane);
    else
        return __shfl_sync(0xffffffffu, value, lane);
}
