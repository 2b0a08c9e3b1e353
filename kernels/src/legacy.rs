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

use crate::common::*;
use crate::simd::*;

pub const Q4_0_BYTES: usize = 18;
pub const Q4_1_BYTES: usize = 20;
pub const Q5_0_BYTES: usize = 22;
pub const Q5_1_BYTES: usize = 24;
pub const Q8_0_BYTES: usize = 34;

struct Block {
    v: [v128; 8],
}

impl Block {
    #[inline(always)]
    unsafe fn load(x: &[f32]) -> Block {
        let p = x.as_ptr();
        Block { v: [load(p), load(p.add(4)), load(p.add(8)), load(p.add(12)), load(p.add(16)), load(p.add(20)), load(p.add(24)), load(p.add(28))] }
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
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
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
unsafe fn store_nibbles(dst: *mut u8, q: &[v128; 8]) {
    let (lo, hi) = to_bytes(q, 15);
    v128_store(dst as *mut v128, v128_or(lo, i8x16_shl(hi, 4)));
}

/// 5-bit quants: the 5th bits as the little-endian word qh at `dst`, nibbles after it.
#[inline(always)]
unsafe fn store_fives(dst: *mut u8, q: &[v128; 8]) {
    let (lo, hi) = to_bytes(q, 31);
    let qh = (i8x16_bitmask(i8x16_shl(lo, 3)) as u32) | ((i8x16_bitmask(i8x16_shl(hi, 3)) as u32) << 16);
    core::ptr::write_unaligned(dst as *mut [u8; 4], qh.to_le_bytes());
    let f = u8x16_splat(0xf);
    v128_store(dst.add(4) as *mut v128, v128_or(v128_and(lo, f), i8x16_shl(v128_and(hi, f), 4)));
}

/// `q*d + m` with x86's NaN rule made explicit: when both `q*d` and `m` are NaN, ggml (addss)
/// returns the first operand's payload, while a commutative f32x4.add may be emitted either way.
#[inline(always)]
fn mul_add_nan_first(q: v128, d: v128, m: v128) -> v128 {
    let p = f32x4_mul(q, d);
    select(f32x4_ne(p, p), p, f32x4_add(p, m))
}

// ---------------------------------------------------------------------------------------
// Q4_0: d = max / -8, q = min(15, (int8)(x/d + 8.5))

pub fn quantize_q4_0(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q4_0_BYTES)) {
        unsafe { q4_0_block(x, y) }
    }
}

unsafe fn q4_0_block(x: &[f32], y: &mut [u8]) {
    let b = Block::load(x);
    let max = match b.finite_signed_absmax(x) {
        Some(v) => v,
        None => return q4_0_block_scalar(x, y),
    };
    let d = max / -8.0;
    let id = match finite_inverse(d) {
        Some(v) => v,
        None => return q4_0_block_scalar(x, y),
    };
    write_f16(y, 0, d);
    // |x * id| <= 8 (plus rounding), so x*id + 8.5 lies in [0, 17): plain truncation is exact.
    let (idv, half) = (f32x4_splat(id), f32x4_splat(8.5));
    store_nibbles(y.as_mut_ptr().add(2), &b.v.map(|v| trunc_small(f32x4_add(f32x4_mul(v, idv), half))));
}

fn q4_0_block_scalar(x: &[f32], y: &mut [u8]) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < fabsf(v) {
            amax = fabsf(v);
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    write_f16(y, 0, d);
    for j in 0..16 {
        let xi0 = to_i8(x[j] * id + 8.5).min(15) as u8;
        let xi1 = to_i8(x[j + 16] * id + 8.5).min(15) as u8;
        y[2 + j] = xi0 | (xi1 << 4);
    }
}

pub fn dequantize_q4_0(x: &[u8], y: &mut [f32]) {
    for (x, y) in x.chunks_exact(Q4_0_BYTES).zip(y.chunks_exact_mut(QK)) {
        let d = f32x4_splat(read_f16(x, 0));
        unsafe {
            for k in 0..4 {
                let q = load_bytes4(x.as_ptr().add(2 + 4 * k));
                let lo = i32x4_sub(v128_and(q, i32x4_splat(0xf)), i32x4_splat(8));
                let hi = i32x4_sub(u32x4_shr(q, 4), i32x4_splat(8));
                store(y.as_mut_ptr().add(4 * k), f32x4_mul(f32x4_convert_i32x4(lo), d));
                store(y.as_mut_ptr().add(16 + 4 * k), f32x4_mul(f32x4_convert_i32x4(hi), d));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Q4_1: d = (max - min) / 15, q = min(15, (int8)((x - min)/d + 0.5))

pub fn quantize_q4_1(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q4_1_BYTES)) {
        unsafe { q4_1_block(x, y) }
    }
}

unsafe fn q4_1_block(x: &[f32], y: &mut [u8]) {
    let b = Block::load(x);
    let (min, max) = match b.finite_min_max(x) {
        Some(v) => v,
        None => return q4_1_block_scalar(x, y),
    };
    let d = (max - min) / 15.0;
    let id = match finite_inverse(d) {
        Some(v) => v,
        None => return q4_1_block_scalar(x, y),
    };
    write_f16(y, 0, d);
    write_f16(y, 2, min);
    // 0 <= (x - min) * id <= 15 (plus rounding): plain truncation is exact.
    let (idv, minv, half) = (f32x4_splat(id), f32x4_splat(min), f32x4_splat(0.5));
    store_nibbles(y.as_mut_ptr().add(4), &b.v.map(|v| trunc_small(f32x4_add(f32x4_mul(f32x4_sub(v, minv), idv), half))));
}

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

fn q4_1_block_scalar(x: &[f32], y: &mut [u8]) {
    let (min, max) = scalar_min_max(x);
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    write_f16(y, 0, d);
    write_f16(y, 2, min);
    for j in 0..16 {
        let xi0 = to_i8((x[j] - min) * id + 0.5).min(15) as u8;
        let xi1 = to_i8((x[j + 16] - min) * id + 0.5).min(15) as u8;
        y[4 + j] = xi0 | (xi1 << 4);
    }
}

pub fn dequantize_q4_1(x: &[u8], y: &mut [f32]) {
    for (x, y) in x.chunks_exact(Q4_1_BYTES).zip(y.chunks_exact_mut(QK)) {
        let d = f32x4_splat(read_f16(x, 0));
        let m = f32x4_splat(read_f16(x, 2));
        unsafe {
            for k in 0..4 {
                let q = load_bytes4(x.as_ptr().add(4 + 4 * k));
                let lo = v128_and(q, i32x4_splat(0xf));
                let hi = u32x4_shr(q, 4);
                store(y.as_mut_ptr().add(4 * k), mul_add_nan_first(f32x4_convert_i32x4(lo), d, m));
                store(y.as_mut_ptr().add(16 + 4 * k), mul_add_nan_first(f32x4_convert_i32x4(hi), d, m));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Q5_0: d = max / -16, q = min(31, (int8)(x/d + 16.5)), 5th bits gathered in qh

pub fn quantize_q5_0(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q5_0_BYTES)) {
        unsafe { q5_0_block(x, y) }
    }
}

unsafe fn q5_0_block(x: &[f32], y: &mut [u8]) {
    let b = Block::load(x);
    let max = match b.finite_signed_absmax(x) {
        Some(v) => v,
        None => return q5_0_block_scalar(x, y),
    };
    let d = max / -16.0;
    let id = match finite_inverse(d) {
        Some(v) => v,
        None => return q5_0_block_scalar(x, y),
    };
    write_f16(y, 0, d);
    let (idv, half) = (f32x4_splat(id), f32x4_splat(16.5));
    store_fives(y.as_mut_ptr().add(2), &b.v.map(|v| trunc_small(f32x4_add(f32x4_mul(v, idv), half))));
}

fn q5_0_block_scalar(x: &[f32], y: &mut [u8]) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < fabsf(v) {
            amax = fabsf(v);
            max = v;
        }
    }
    let d = max / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    write_f16(y, 0, d);
    let mut qh = 0u32;
    for j in 0..16 {
        let xi0 = to_i8(x[j] * id + 16.5).min(31) as u8;
        let xi1 = to_i8(x[j + 16] * id + 16.5).min(31) as u8;
        y[6 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
        qh |= (((xi0 & 0x10) >> 4) as u32) << j;
        qh |= (((xi1 & 0x10) >> 4) as u32) << (j + 16);
    }
    y[2..6].copy_from_slice(&qh.to_le_bytes());
}

/// Element j's 5th bit from qh, as 0 or 16 per lane, for j = first..first+4.
#[inline(always)]
fn fifth_bits(qh: u32, first: u32) -> v128 {
    let bits = u32x4(1 << first, 1 << (first + 1), 1 << (first + 2), 1 << (first + 3));
    let set = i32x4_ne(v128_and(u32x4_splat(qh), bits), i32x4_splat(0));
    v128_and(set, i32x4_splat(0x10))
}

pub fn dequantize_q5_0(x: &[u8], y: &mut [f32]) {
    for (x, y) in x.chunks_exact(Q5_0_BYTES).zip(y.chunks_exact_mut(QK)) {
        let d = f32x4_splat(read_f16(x, 0));
        let qh = u32::from_le_bytes([x[2], x[3], x[4], x[5]]);
        unsafe {
            for k in 0..4 {
                let q = load_bytes4(x.as_ptr().add(6 + 4 * k));
                let lo = i32x4_sub(v128_or(v128_and(q, i32x4_splat(0xf)), fifth_bits(qh, 4 * k as u32)), i32x4_splat(16));
                let hi = i32x4_sub(v128_or(u32x4_shr(q, 4), fifth_bits(qh, 16 + 4 * k as u32)), i32x4_splat(16));
                store(y.as_mut_ptr().add(4 * k), f32x4_mul(f32x4_convert_i32x4(lo), d));
                store(y.as_mut_ptr().add(16 + 4 * k), f32x4_mul(f32x4_convert_i32x4(hi), d));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Q5_1: d = (max - min) / 31, q = (uint8)((x - min)/d + 0.5) (no clamp in ggml)

pub fn quantize_q5_1(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q5_1_BYTES)) {
        unsafe { q5_1_block(x, y) }
    }
}

unsafe fn q5_1_block(x: &[f32], y: &mut [u8]) {
    let b = Block::load(x);
    let (min, max) = match b.finite_min_max(x) {
        Some(v) => v,
        None => return q5_1_block_scalar(x, y),
    };
    let d = (max - min) / 31.0;
    let id = match finite_inverse(d) {
        Some(v) => v,
        None => return q5_1_block_scalar(x, y),
    };
    write_f16(y, 0, d);
    write_f16(y, 2, min);
    // ggml has no clamp here; in range (x - min) * id + 0.5 < 32 anyway.
    let (idv, minv, half) = (f32x4_splat(id), f32x4_splat(min), f32x4_splat(0.5));
    store_fives(y.as_mut_ptr().add(4), &b.v.map(|v| trunc_small(f32x4_add(f32x4_mul(f32x4_sub(v, minv), idv), half))));
}

fn q5_1_block_scalar(x: &[f32], y: &mut [u8]) {
    let (min, max) = scalar_min_max(x);
    let d = (max - min) / 31.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    write_f16(y, 0, d);
    write_f16(y, 2, min);
    let mut qh = 0u32;
    for j in 0..16 {
        let xi0 = cvtt((x[j] - min) * id + 0.5) as u8;
        let xi1 = cvtt((x[j + 16] - min) * id + 0.5) as u8;
        y[8 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
        qh |= (((xi0 & 0x10) >> 4) as u32) << j;
        qh |= (((xi1 & 0x10) >> 4) as u32) << (j + 16);
    }
    y[4..8].copy_from_slice(&qh.to_le_bytes());
}

pub fn dequantize_q5_1(x: &[u8], y: &mut [f32]) {
    for (x, y) in x.chunks_exact(Q5_1_BYTES).zip(y.chunks_exact_mut(QK)) {
        let d = f32x4_splat(read_f16(x, 0));
        let m = f32x4_splat(read_f16(x, 2));
        let qh = u32::from_le_bytes([x[4], x[5], x[6], x[7]]);
        unsafe {
            for k in 0..4 {
                let q = load_bytes4(x.as_ptr().add(8 + 4 * k));
                let lo = v128_or(v128_and(q, i32x4_splat(0xf)), fifth_bits(qh, 4 * k as u32));
                let hi = v128_or(u32x4_shr(q, 4), fifth_bits(qh, 16 + 4 * k as u32));
                store(y.as_mut_ptr().add(4 * k), mul_add_nan_first(f32x4_convert_i32x4(lo), d, m));
                store(y.as_mut_ptr().add(16 + 4 * k), mul_add_nan_first(f32x4_convert_i32x4(hi), d, m));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Q8_0: d = amax / 127, q = (int8)roundf(x/d)

pub fn quantize_q8_0(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK).zip(y.chunks_exact_mut(Q8_0_BYTES)) {
        unsafe { q8_0_block(x, y) }
    }
}

unsafe fn q8_0_block(x: &[f32], y: &mut [u8]) {
    let b = Block::load(x);
    let amax = match b.finite_amax() {
        Some(v) => v,
        None => return q8_0_block_scalar(x, y),
    };
    let d = amax / 127.0;
    let id = match finite_inverse(d) {
        Some(v) => v,
        None => return q8_0_block_scalar(x, y),
    };
    write_f16(y, 0, d);
    // |x * id| <= 127 (plus rounding): roundf, then the integer out of the mantissa.
    let idv = f32x4_splat(id);
    let q = b.v.map(|v| i32x4_sub(f32x4_add(roundf4(f32x4_mul(v, idv)), f32x4_splat(12582912.0)), i32x4_splat(0x4b40_0000)));
    let bytes = |a: v128, b: v128, c: v128, d: v128| i8x16_narrow_i16x8(i16x8_narrow_i32x4(a, b), i16x8_narrow_i32x4(c, d));
    v128_store(y.as_mut_ptr().add(2) as *mut v128, bytes(q[0], q[1], q[2], q[3]));
    v128_store(y.as_mut_ptr().add(18) as *mut v128, bytes(q[4], q[5], q[6], q[7]));
}

fn q8_0_block_scalar(x: &[f32], y: &mut [u8]) {
    let mut amax = 0.0f32;
    for &v in x {
        let a = fabsf(v);
        amax = if amax > a { amax } else { a }; // ggml's MAX macro: a NaN restarts the scan
    }
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    write_f16(y, 0, d);
    for j in 0..QK {
        y[2 + j] = cvtt(roundf(x[j] * id)) as u8;
    }
}

pub fn dequantize_q8_0(x: &[u8], y: &mut [f32]) {
    for (x, y) in x.chunks_exact(Q8_0_BYTES).zip(y.chunks_exact_mut(QK)) {
        let d = f32x4_splat(read_f16(x, 0));
        unsafe {
            for k in 0..8 {
                let q = load_bytes4(x.as_ptr().add(2 + 4 * k));
                let q = i32x4_shr(i32x4_shl(q, 24), 24); // int8
                store(y.as_mut_ptr().add(4 * k), f32x4_mul(f32x4_convert_i32x4(q), d));
            }
        }
    }
}
