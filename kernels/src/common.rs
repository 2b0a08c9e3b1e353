//! Helpers every block family shares: ggml's rounding tricks, its software fp16/bf16
//! conversions, C's float-to-int casts as gcc emits them on x86-64, and small SIMD utilities.
//!
//! Byte-identical output rests on two rules kept throughout the crate:
//! * every float operation happens in the same order and precision as in ggml's C code
//!   (Rust never contracts a*b+c into an FMA, and SIMD lanes run the scalar sequence);
//! * every conversion reproduces what the x86-64 build of ggml actually does, including the
//!   cases C leaves undefined (out-of-range float to int gives INT_MIN, as cvttss2si does).

use crate::simd::*;

pub const QK: usize = 32;
pub const QK_K: usize = 256;

/// GROUP_MAX_EPS in ggml-quants.c: below this a group counts as all zero.
pub const GROUP_MAX_EPS: f32 = 1e-15;

#[inline(always)]
pub fn fabsf(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0x7fff_ffff)
}

/// ggml's nearest_int: adding 1.5 * 2^23 makes the FPU round (ties to even) into the low
/// mantissa bits. Out-of-range, inf and NaN inputs give the same garbage as in C.
#[inline(always)]
pub fn nearest_int(f: f32) -> i32 {
    let v = f + 12582912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

#[inline(always)]
pub fn nearest_int4(f: v128) -> v128 {
    let v = f32x4_add(f, f32x4_splat(12582912.0));
    i32x4_sub(v128_and(v, i32x4_splat(0x007f_ffff)), i32x4_splat(0x0040_0000))
}

/// `(int)f` as cvttss2si computes it: truncation, and INT_MIN when the value does not fit
/// (including NaN). Rust's `as` saturates instead, so it cannot be used directly.
#[inline(always)]
pub fn cvtt(f: f32) -> i32 {
    if fabsf(f) < 2147483648.0 {
        f as i32
    } else {
        i32::MIN
    }
}

/// C's truncf, exactly.
#[inline(always)]
pub fn truncf(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    if e >= 23 {
        x // already integral, inf or NaN
    } else if e < 0 {
        f32::from_bits(bits & 0x8000_0000)
    } else {
        f32::from_bits(bits & !(0x007f_ffffu32 >> e))
    }
}

/// C's roundf (halves away from zero). `x - truncf(x)` is exact, so no double rounding.
#[inline(always)]
pub fn roundf(x: f32) -> f32 {
    let t = truncf(x);
    let r = x - t;
    if r >= 0.5 {
        t + 1.0
    } else if r <= -0.5 {
        t - 1.0
    } else {
        t
    }
}

/// Four lanes of roundf.
#[inline(always)]
pub fn roundf4(x: v128) -> v128 {
    let t = f32x4_trunc(x);
    let r = f32x4_sub(x, t);
    let one = v128_or(v128_and(x, i32x4_splat(i32::MIN)), f32x4_splat(1.0)); // copysign(1, x)
    let bump = v128_and(one, f32x4_ge(f32x4_abs(r), f32x4_splat(0.5)));
    f32x4_add(t, bump)
}

/// glibc's lroundf on x86-64: exact below 2^63, otherwise `(long)x`, i.e. LONG_MIN
/// (also for NaN).
#[inline(always)]
pub fn lroundf(x: f32) -> i64 {
    if fabsf(x) < 9223372036854775808.0 {
        roundf(x) as i64
    } else {
        i64::MIN
    }
}

// ---------------------------------------------------------------------------------------
// fp16 / bf16, bit for bit as ggml-impl.h computes them in software (no F16C in ggml-base).

/// ggml_compute_fp32_to_fp16: round to nearest even, NaN becomes 0x7e00 with the sign kept.
#[inline(always)]
pub fn fp32_to_fp16(f: f32) -> u16 {
    let scale_to_inf = f32::from_bits(0x7780_0000); // 2^112
    let scale_to_zero = f32::from_bits(0x0880_0000); // 2^-110
    let mut base = (fabsf(f) * scale_to_inf) * scale_to_zero;
    let w = f.to_bits();
    let shl1_w = w.wrapping_add(w);
    let sign = w & 0x8000_0000;
    let mut bias = shl1_w & 0xff00_0000;
    if bias < 0x7100_0000 {
        bias = 0x7100_0000;
    }
    base = f32::from_bits((bias >> 1) + 0x0780_0000) + base;
    let bits = base.to_bits();
    let exp_bits = (bits >> 13) & 0x0000_7c00;
    let mantissa_bits = bits & 0x0000_0fff;
    let nonsign = exp_bits + mantissa_bits;
    ((sign >> 16) | if shl1_w > 0xff00_0000 { 0x7e00 } else { nonsign }) as u16
}

/// Four lanes of fp32_to_fp16; each 32-bit lane holds the 16-bit result.
#[inline(always)]
pub fn fp32_to_fp16x4(f: v128) -> v128 {
    let mut base = f32x4_mul(f32x4_mul(f32x4_abs(f), f32x4_splat(f32::from_bits(0x7780_0000))), f32x4_splat(f32::from_bits(0x0880_0000)));
    let shl1_w = i32x4_add(f, f);
    let sign = v128_and(f, i32x4_splat(i32::MIN));
    let bias = u32x4_max(v128_and(shl1_w, u32x4_splat(0xff00_0000)), u32x4_splat(0x7100_0000));
    base = f32x4_add(i32x4_add(u32x4_shr(bias, 1), u32x4_splat(0x0780_0000)), base);
    let exp_bits = v128_and(u32x4_shr(base, 13), u32x4_splat(0x7c00));
    let mantissa_bits = v128_and(base, u32x4_splat(0x0fff));
    let nonsign = i32x4_add(exp_bits, mantissa_bits);
    let nan = u32x4_gt(shl1_w, u32x4_splat(0xff00_0000));
    let low = v128_bitselect(u32x4_splat(0x7e00), nonsign, nan);
    v128_and(v128_or(u32x4_shr(sign, 16), low), u32x4_splat(0xffff))
}

/// ggml_compute_fp16_to_fp32.
#[inline(always)]
pub fn fp16_to_fp32(h: u16) -> f32 {
    let w = (h as u32) << 16;
    let sign = w & 0x8000_0000;
    let two_w = w.wrapping_add(w);
    let exp_offset = 0xe0u32 << 23;
    let exp_scale = f32::from_bits(0x0780_0000); // 2^-112
    let normalized = f32::from_bits((two_w >> 4) + exp_offset) * exp_scale;
    let magic_mask = 126u32 << 23;
    let denormalized = f32::from_bits((two_w >> 17) | magic_mask) - 0.5;
    let denormalized_cutoff = 1u32 << 27;
    let result = sign | if two_w < denormalized_cutoff { denormalized.to_bits() } else { normalized.to_bits() };
    f32::from_bits(result)
}

/// Four lanes of fp16_to_fp32; input lanes hold the 16-bit values zero-extended.
#[inline(always)]
pub fn fp16_to_fp32x4(h: v128) -> v128 {
    let w = i32x4_shl(h, 16);
    let sign = v128_and(w, i32x4_splat(i32::MIN));
    let two_w = i32x4_add(w, w);
    let normalized = f32x4_mul(i32x4_add(u32x4_shr(two_w, 4), u32x4_splat(0xe0 << 23)), f32x4_splat(f32::from_bits(0x0780_0000)));
    let denormalized = f32x4_sub(v128_or(u32x4_shr(two_w, 17), u32x4_splat(126 << 23)), f32x4_splat(0.5));
    let small = u32x4_lt(two_w, u32x4_splat(1 << 27));
    v128_or(sign, v128_bitselect(denormalized, normalized, small))
}

/// ggml_compute_fp32_to_bf16: round to nearest even, NaN forced quiet.
#[inline(always)]
pub fn fp32_to_bf16(f: f32) -> u16 {
    let i = f.to_bits();
    if (i & 0x7fff_ffff) > 0x7f80_0000 {
        return ((i >> 16) | 64) as u16;
    }
    (i.wrapping_add(0x7fff + ((i >> 16) & 1)) >> 16) as u16
}

#[inline(always)]
pub fn fp32_to_bf16x4(f: v128) -> v128 {
    let nan = i32x4_gt(v128_and(f, i32x4_splat(0x7fff_ffff)), i32x4_splat(0x7f80_0000));
    let quiet = v128_or(u32x4_shr(f, 16), i32x4_splat(64));
    let odd = v128_and(u32x4_shr(f, 16), i32x4_splat(1));
    let rounded = u32x4_shr(i32x4_add(f, i32x4_add(i32x4_splat(0x7fff), odd)), 16);
    v128_bitselect(quiet, rounded, nan)
}

// ---------------------------------------------------------------------------------------
// SIMD utilities.

#[inline(always)]
pub unsafe fn load(p: *const f32) -> v128 {
    v128_load(p as *const v128)
}

#[inline(always)]
pub unsafe fn store(p: *mut f32, v: v128) {
    v128_store(p as *mut v128, v)
}

/// Narrows four i32x4 vectors holding values 0..=255 to 16 bytes at `dst`.
#[inline(always)]
pub unsafe fn store_bytes16(dst: *mut u8, a: v128, b: v128, c: v128, d: v128) {
    let lo = u16x8_narrow_i32x4(a, b);
    let hi = u16x8_narrow_i32x4(c, d);
    v128_store(dst as *mut v128, u8x16_narrow_i16x8(lo, hi));
}

/// Narrows one i32x4 vector holding values 0..=255 to 4 bytes at `dst`.
#[inline(always)]
pub unsafe fn store_bytes4(dst: *mut u8, a: v128) {
    let n = u8x16_narrow_i16x8(u16x8_narrow_i32x4(a, a), i16x8_splat(0));
    let word = i32x4_extract_lane::<0>(n) as u32;
    core::ptr::write_unaligned(dst as *mut [u8; 4], word.to_le_bytes());
}

/// Four bytes at `src`, zero-extended into the four i32 lanes.
#[inline(always)]
pub unsafe fn load_bytes4(src: *const u8) -> v128 {
    let word = u32::from_le_bytes(core::ptr::read_unaligned(src as *const [u8; 4]));
    u32x4_extend_low_u16x8(u16x8_extend_low_u8x16(u32x4_splat(word)))
}

/// 4x4 transpose of 32-bit lanes: row k of the result holds lane k of each input.
#[inline(always)]
pub fn transpose4(a: v128, b: v128, c: v128, d: v128) -> [v128; 4] {
    let t0 = i32x4_shuffle::<0, 4, 1, 5>(a, b);
    let t1 = i32x4_shuffle::<2, 6, 3, 7>(a, b);
    let t2 = i32x4_shuffle::<0, 4, 1, 5>(c, d);
    let t3 = i32x4_shuffle::<2, 6, 3, 7>(c, d);
    [
        i32x4_shuffle::<0, 1, 4, 5>(t0, t2),
        i32x4_shuffle::<2, 3, 6, 7>(t0, t2),
        i32x4_shuffle::<0, 1, 4, 5>(t1, t3),
        i32x4_shuffle::<2, 3, 6, 7>(t1, t3),
    ]
}

/// Lane form of four consecutive groups of `n` floats: `out[i]` lane k = `x[k*n + i]`.
#[inline(always)]
pub unsafe fn to_lanes(x: *const f32, n: usize, out: &mut [v128]) {
    let mut i = 0;
    while i < n {
        let t = transpose4(load(x.add(i)), load(x.add(n + i)), load(x.add(2 * n + i)), load(x.add(3 * n + i)));
        out[i] = t[0];
        out[i + 1] = t[1];
        out[i + 2] = t[2];
        out[i + 3] = t[3];
        i += 4;
    }
}

/// Inverse of `to_lanes` for i32 lanes: `out[k*n + i]` = lane k of `lanes[i]`.
#[inline(always)]
pub fn from_lanes(lanes: &[v128], n: usize, out: &mut [i32]) {
    let mut i = 0;
    while i < n {
        let t = transpose4(lanes[i], lanes[i + 1], lanes[i + 2], lanes[i + 3]);
        for (k, row) in t.iter().enumerate() {
            unsafe { v128_store(out[k * n + i..k * n + i + 4].as_mut_ptr() as *mut v128, *row) };
        }
        i += 4;
    }
}

#[inline(always)]
pub fn lanes(v: v128) -> [f32; 4] {
    [f32x4_extract_lane::<0>(v), f32x4_extract_lane::<1>(v), f32x4_extract_lane::<2>(v), f32x4_extract_lane::<3>(v)]
}

/// Lane-wise `max(lo, min(hi, v))` on i32, ggml's MAX(lo, MIN(hi, l)).
#[inline(always)]
pub fn clamp4(v: v128, lo: i32, hi: i32) -> v128 {
    i32x4_max(i32x4_min(v, i32x4_splat(hi)), i32x4_splat(lo))
}

/// `if cond { a } else { b }` per lane.
#[inline(always)]
pub fn select(cond: v128, a: v128, b: v128) -> v128 {
    v128_bitselect(a, b, cond)
}

/// C's sqrtf (correctly rounded). core has no scalar sqrt in this Rust, so it goes through
/// one lane of f32x4.sqrt, which is the same IEEE operation.
#[inline(always)]
pub fn sqrtf(x: f32) -> f32 {
    f32x4_extract_lane::<0>(f32x4_sqrt(f32x4_splat(x)))
}

/// The first N elements of `y` as an array. One length check up front lets the compiler
/// drop the per-access checks in the fixed-trip loops that follow (checked stores made V8
/// run some dequantizers 70% slower).
#[inline(always)]
pub fn exactly<const N: usize, T>(y: &mut [T]) -> &mut [T; N] {
    (&mut y[..N]).try_into().unwrap()
}
