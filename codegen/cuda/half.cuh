/* float16 is stored as its bits and computed in float, rounded to float16 after each
   operation as NumPy's float16 loops do (PTX conversions: no cuda_fp16.h needed). */
typedef unsigned short exprc_half;

static __device__ __forceinline__ float exprc_half_to_float(exprc_half h)
{
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

static __device__ __forceinline__ exprc_half exprc_float_to_half(float f)
{
    exprc_half h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

/* double to float16 in one rounding (through float would round twice) */
static __device__ __forceinline__ exprc_half exprc_double_to_half(double d)
{
    exprc_half h;
    asm("cvt.rn.f16.f64 %0, %1;" : "=h"(h) : "d"(d));
    return h;
}

/* the float16 nearest to f (or d), as a float */
static __device__ __forceinline__ float exprc_round_half(float f)
{
    return exprc_half_to_float(exprc_float_to_half(f));
}

static __device__ __forceinline__ float exprc_round_half_d(double d)
{
    return exprc_half_to_float(exprc_double_to_half(d));
}
