//! Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0: blocks of 32 with one fp16 scale (and min).
//!
//! The SIMD path works across the 32 elements of one block: after the scale is known every
//! element is independent, and the reductions before it (abs-max, min, max) are exact in any
//! order. Two things in ggml depend on the scan order and are restored explicitly:
//! * Q4_0/Q5_0 keep the *signed* value of the first element whose |x| is largest;
//! * min/max keep the first of equal values, which decides the sign of a zero min/max.
//! The SIMD path only takes blocks whose values, scale and inverse scale are all finite, so
//! every quant is provably in range before it is converted. Anything else (NaN, inf, a
//! subnormal scale whose inverse overflows) goes to the scalar path, which mirrors the C loops
//! one to one, including x86's INT_MIN for out-of-range float-to-int casts.

mod q4;
mod q5;
mod q8;

use crate::common::*;
use crate::simd::*;

/// One block of 32 floats in eight vectors.
struct Lanes32 {
    v: [v128; 8],
}

impl Lanes32 {
    #[inline(always)]
    fn load(x: &[f32]) -> Lanes32 {
        assert!(x.len() >= QK);
        let p = x.as_ptr();
        // SAFETY: 32 floats are readable at p (asserted); v128 loads need no alignment.
        unsafe {
            Lanes32 {
                v: [load(p), load(p.add(4)), load(p.add(8)), load(p.add(12)), load(p.add(16)), load(p.add(20)), load(p.add(24)), load(p.add(28))],
            }
        }
    }

    /// Largest |x| if the block is finite. |x| bit patterns sort like the values, and inf/NaN
    /// sort above every finite value, so one integer max finds both.
    #[inline(always)]
    fn finite_amax(&self) -> Option<f32> {
        let mut m = f32x4_abs(self.v[0]);
        for v in &self.v[1..] {
            m = i32x4_max(m, f32x4_abs(*v));
        }
        let m = i32x4_max(m, i32x4_shuffle::<2, 3, 0, 1>(m, m));
        let bits = i32x4_extract_lane::<0>(i32x4_max(m, i32x4_shuffle::<1, 0, 3, 2>(m, m))) as u32;
        if bits < 0x7f80_0000 {
            Some(f32::from_bits(bits))
        } else {
            None
        }
    }

    /// (min, max) if the block is finite. ggml's scan keeps the first of equal values, which
    /// only matters for a zero min/max (its sign), restored explicitly.
    #[inline(always)]
    fn finite_min_max(&self, x: &[f32]) -> Option<(f32, f32)> {
        let (mut lo, mut hi) = (self.v[0], self.v[0]);
        let mut bad = f32x4_abs(self.v[0]);
        for v in &self.v[1..] {
            lo = f32x4_pmin(lo, *v);
            hi = f32x4_pmax(hi, *v);
            bad = i32x4_max(bad, f32x4_abs(*v));
        }
        if v128_any_true(i32x4_gt(bad, i32x4_splat(0x7f7f_ffff))) {
            return None;
        }
        let (mut min, mut max) = (hmin(lo), hmax(hi));
        if min == 0.0 {
            min = x[self.first(|v| f32x4_eq(v, f32x4_splat(0.0)))];
        }
        if max == 0.0 {
            max = x[self.first(|v| f32x4_eq(v, f32x4_splat(0.0)))];
        }
        Some((min, max))
    }

    /// ggml's `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }` scan, for a finite block:
    /// the signed value of the first element with the largest magnitude.
    #[inline(always)]
    fn finite_signed_absmax(&self, x: &[f32]) -> Option<f32> {
        let (min, max) = self.finite_min_max(x)?;
        let amax = if max > -min { max } else { -min };
        Some(if amax == 0.0 {
            0.0 // never updated: the initial +0.0 stays
        } else if max != amax {
            min
        } else if -min != amax {
            max
        } else {
            // both +amax and -amax occur: the earlier one wins
            let a = f32x4_splat(amax);
            x[self.first(|v| f32x4_eq(f32x4_abs(v), a))]
        })
    }

    /// Index of the first element where `pred` holds (it must hold somewhere).
    #[inline(always)]
    fn first(&self, pred: impl Fn(v128) -> v128) -> usize {
        let mut bits = 0u32;
        for (k, v) in self.v.iter().enumerate() {
            bits |= (i32x4_bitmask(pred(*v)) as u32) << (4 * k);
        }
        bits.trailing_zeros() as usize
    }
}

#[inline(always)]
fn hmax(v: v128) -> f32 {
    let m = f32x4_pmax(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    let m = f32x4_pmax(m, i32x4_shuffle::<1, 0, 3, 2>(m, m));
    f32x4_extract_lane::<0>(m)
}

#[inline(always)]
fn hmin(v: v128) -> f32 {
    let m = f32x4_pmin(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    let m = f32x4_pmin(m, i32x4_shuffle::<1, 0, 3, 2>(m, m));
    f32x4_extract_lane::<0>(m)
}

/// `(int8_t)f` promoted back to int: cvtt, then keep the low byte sign-extended.
#[inline(always)]
fn to_i8(f: f32) -> i32 {
    cvtt(f) as i8 as i32
}

/// (int)v for 0 <= v < 2^23, as an i32 lane: truncate, then read the integer out of the
/// mantissa of t + 2^23. Exact in that range, and much cheaper than a saturating convert.
#[inline(always)]
fn trunc_small(v: v128) -> v128 {
    i32x4_sub(f32x4_add(f32x4_trunc(v), f32x4_splat(8388608.0)), i32x4_splat(0x4b00_0000))
}

/// The inverse scale `1/d` (0 for d == 0), or None if d or 1/d is not finite: then x/d can
/// leave the quant range and ggml's out-of-range casts must be reproduced by the scalar path.
#[inline(always)]
fn finite_inverse(d: f32) -> Option<f32> {
    let id = inverse(d);
    if fabsf(d) <= f32::MAX && fabsf(id) <= f32::MAX {
        Some(id)
    } else {
        None
    }
}

/// 32 quants (i32 lanes, 0..=255) to bytes, each clamped to `max` (ggml's MIN; a no-op where
/// ggml has none), as (elements 0..16, elements 16..32).
#[inline(always)]
fn to_bytes(q: &[v128; 8], max: u8) -> (v128, v128) {
    let lo = u8x16_narrow_i16x8(u16x8_narrow_i32x4(q[0], q[1]), u16x8_narrow_i32x4(q[2], q[3]));
    let hi = u8x16_narrow_i16x8(u16x8_narrow_i32x4(q[4], q[5]), u16x8_narrow_i32x4(q[6], q[7]));
    (u8x16_min(lo, u8x16_splat(max)), u8x16_min(hi, u8x16_splat(max)))
}

/// 4-bit quants: byte j = q[j] | q[j + 16] << 4.
#[inline(always)]
fn store_nibbles(qs: &mut [u8; 16], q: &[v128; 8]) {
    let (lo, hi) = to_bytes(q, 15);
    // SAFETY: qs is 16 writable bytes; v128 stores need no alignment.
    unsafe { v128_store(qs.as_mut_ptr() as *mut v128, v128_or(lo, i8x16_shl(hi, 4))) };
}

/// 5-bit quants: the 5th bits as the little-endian word qh, the low nibbles in qs.
#[inline(always)]
fn store_fives(qh: &mut [u8; 4], qs: &mut [u8; 16], q: &[v128; 8]) {
    let (lo, hi) = to_bytes(q, 31);
    let bits = (i8x16_bitmask(i8x16_shl(lo, 3)) as u32) | ((i8x16_bitmask(i8x16_shl(hi, 3)) as u32) << 16);
    *qh = bits.to_le_bytes();
    let f = u8x16_splat(0xf);
    // SAFETY: as in store_nibbles.
    unsafe { v128_store(qs.as_mut_ptr() as *mut v128, v128_or(v128_and(lo, f), i8x16_shl(v128_and(hi, f), 4))) };
}

/// `q*d + m` with x86's NaN rule made explicit: when both `q*d` and `m` are NaN, ggml (addss)
/// returns the first operand's payload, while a commutative f32x4.add may be emitted either way.
#[inline(always)]
fn mul_add_nan_first(q: v128, d: v128, m: v128) -> v128 {
    let p = f32x4_mul(q, d);
    select(f32x4_ne(p, p), p, f32x4_add(p, m))
}

/// The scalar form of mul_add_nan_first's rule: `p + m`, but a NaN `p` wins over a NaN `m`.
#[inline(always)]
fn add_nan_first(p: f32, m: f32) -> f32 {
    if p != p {
        p
    } else {
        p + m
    }
}

/// ggml's `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }` scan.
fn scalar_signed_absmax(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < fabsf(v) {
            amax = fabsf(v);
            max = v;
        }
    }
    max
}

/// ggml's min/max scan, starting from FLT_MAX and -FLT_MAX.
fn scalar_min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// `1/d`, or 0 for d == 0, as ggml writes `d ? 1.0f/d : 0.0f`.
#[inline(always)]
fn inverse(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// Element j's 5th bit from qh, as 0 or 16 per lane, for j = first..first+4.
#[inline(always)]
fn fifth_bits(qh: u32, first: u32) -> v128 {
    let bits = u32x4(1 << first, 1 << (first + 1), 1 << (first + 2), 1 << (first + 3));
    let set = i32x4_ne(v128_and(u32x4_splat(qh), bits), i32x4_splat(0));
    v128_and(set, i32x4_splat(0x10))
}

/// Four quants, bytes `at..at+4` of qs zero-extended into i32 lanes.
#[inline(always)]
fn load_quads(qs: &[u8], at: usize) -> v128 {
    assert!(at + 4 <= qs.len());
    // SAFETY: four bytes are readable at `at` (asserted).
    unsafe { load_bytes4(qs.as_ptr().add(at)) }
}

/// Stores four floats at y[at..at+4].
#[inline(always)]
fn store4(y: &mut [f32], at: usize, v: v128) {
    assert!(at + 4 <= y.len());
    // SAFETY: four floats are writable at `at` (asserted).
    unsafe { store(y.as_mut_ptr().add(at), v) }
}

