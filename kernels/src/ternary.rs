//! TQ1_0 and TQ2_0: ternary super-blocks of 256 (BitNet b1.58 / TriLM), scale = abs-max.
//!
//! Every element is independent once the scale is known, so the SIMD path runs across
//! consecutive output bytes. It needs |x * id| <= 1, which holds whenever the scale and its
//! inverse are finite; blocks with NaN, infinities or a subnormal scale whose inverse
//! overflows take the scalar path, which mirrors ggml's use of lroundf and uint8 arithmetic.

use crate::common::*;
use crate::simd::*;

pub const TQ1_0_BYTES: usize = 54;
pub const TQ2_0_BYTES: usize = 66;

/// (d, id) for the SIMD path, or None when the block needs the scalar path.
#[inline(always)]
unsafe fn simd_scale(x: &[f32]) -> Option<(f32, f32)> {
    let p = x.as_ptr();
    let mut m = f32x4_splat(0.0);
    let mut nan = f32x4_splat(0.0);
    for i in (0..QK_K).step_by(4) {
        let v = load(p.add(i));
        m = f32x4_pmax(m, f32x4_abs(v));
        nan = v128_or(nan, f32x4_ne(v, v));
    }
    let m = f32x4_pmax(m, i32x4_shuffle::<2, 3, 0, 1>(m, m));
    let amax = f32x4_extract_lane::<0>(f32x4_pmax(m, i32x4_shuffle::<1, 0, 3, 2>(m, m)));
    let id = if amax != 0.0 { 1.0 / amax } else { 0.0 };
    if v128_any_true(nan) || !(amax <= f32::MAX) || !(id <= f32::MAX) {
        return None;
    }
    Some((amax, id))
}

/// ggml's `MAX(amax, fabsf(v))` scan (a NaN restarts it) and the inverse scale.
fn scalar_scale(x: &[f32]) -> (f32, f32) {
    let mut amax = 0.0f32;
    for &v in &x[..QK_K] {
        let a = fabsf(v);
        amax = if amax > a { amax } else { a };
    }
    (amax, if amax != 0.0 { 1.0 / amax } else { 0.0 })
}

/// `lroundf(v) + 1` converted to int, as ggml computes a trit.
#[inline(always)]
fn trit(v: f32) -> i32 {
    lroundf(v).wrapping_add(1) as i32
}

/// Trits (0, 1, 2) of four lanes, valid for |v| <= 1.
#[inline(always)]
fn trit4(v: v128) -> v128 {
    i32x4_add(i32x4_trunc_sat_f32x4(roundf4(v)), i32x4_splat(1))
}

/// ggml's ceiling division that maps 5 trits (0..=242) onto a byte: q * 256 / 243, rounded up.
/// Done in f32, exact here: the quotient never comes within 2^-24 (relative) of an integer.
#[inline(always)]
fn ceil_div243(q: v128) -> v128 {
    let num = f32x4_convert_i32x4(i32x4_add(i32x4_shl(v128_and(q, i32x4_splat(0xff)), 8), i32x4_splat(242)));
    v128_and(i32x4_trunc_sat_f32x4(f32x4_div(num, f32x4_splat(243.0))), i32x4_splat(0xff))
}

#[inline(always)]
fn ceil_div243_scalar(q: u8) -> u8 {
    ((q as u32 * 256 + 242) / 243) as u8
}

// ---------------------------------------------------------------------------------------
// TQ1_0: qs[48] (5 trits a byte), qh[4] (4 trits a byte), d

pub fn quantize_tq1_0(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(TQ1_0_BYTES)) {
        unsafe {
            match simd_scale(x) {
                Some((d, id)) => tq1_0_block(x, y, d, id),
                None => tq1_0_block_scalar(x, y),
            }
        }
    }
}

unsafe fn tq1_0_block(x: &[f32], y: &mut [u8], d: f32, id: f32) {
    write_f16(y, 52, d);
    let p = x.as_ptr();
    let idv = f32x4_splat(id);
    let t = |at: usize| trit4(f32x4_mul(load(p.add(at)), idv));
    // Byte m of a run of `len` bytes starting at element `base` holds x[base + m + n*len], n = 0..5.
    let mut run = |base: usize, len: usize, out: usize| {
        let mut q = [i32x4_splat(0); 8];
        for (k, slot) in q.iter_mut().enumerate().take(len / 4) {
            let mut acc = t(base + 4 * k);
            for n in 1..5 {
                acc = i32x4_add(i32x4_mul(acc, i32x4_splat(3)), t(base + 4 * k + n * len));
            }
            *slot = ceil_div243(acc);
        }
        for k in (0..len / 4).step_by(4) {
            store_bytes16(y.as_mut_ptr().add(out + 4 * k), q[k], q[k + 1], q[k + 2], q[k + 3]);
        }
    };
    run(0, 32, 0);
    run(160, 16, 32);
    // qh: byte j holds x[240 + j + 4m], m = 0..4, then one more *3 to fill the 5-trit slot.
    let mut acc = t(240);
    for m in 1..4 {
        acc = i32x4_add(i32x4_mul(acc, i32x4_splat(3)), t(240 + 4 * m));
    }
    store_bytes4(y.as_mut_ptr().add(48), ceil_div243(i32x4_mul(acc, i32x4_splat(3))));
}

fn tq1_0_block_scalar(x: &[f32], y: &mut [u8]) {
    let (d, id) = scalar_scale(x);
    write_f16(y, 52, d);
    let mut pack = |base: usize, len: usize, out: usize| {
        for m in 0..len {
            let mut q = 0u8;
            for n in 0..5 {
                q = q.wrapping_mul(3).wrapping_add(trit(x[base + m + n * len] * id) as u8);
            }
            y[out + m] = ceil_div243_scalar(q);
        }
    };
    pack(0, 32, 0);
    pack(160, 16, 32);
    for j in 0..4 {
        let mut q = 0u8;
        for m in 0..4 {
            q = q.wrapping_mul(3).wrapping_add(trit(x[240 + j + 4 * m] * id) as u8);
        }
        y[48 + j] = ceil_div243_scalar(q.wrapping_mul(3));
    }
}

pub fn dequantize_tq1_0(x: &[u8], y: &mut [f32]) {
    const POW3: [i32; 5] = [1, 3, 9, 27, 81];
    for (x, y) in x.chunks_exact(TQ1_0_BYTES).zip(y.chunks_exact_mut(QK_K)) {
        let d = f32x4_splat(read_f16(x, 52));
        let mut out = 0;
        // (byte offset, bytes, trits per byte) in ggml's output order.
        for &(at, len, trits) in &[(0usize, 32usize, 5usize), (32, 16, 5), (48, 4, 4)] {
            for &pow in &POW3[..trits] {
                for k in 0..len / 4 {
                    unsafe {
                        let q = v128_and(i32x4_mul(load_bytes4(x.as_ptr().add(at + 4 * k)), i32x4_splat(pow)), i32x4_splat(0xff));
                        let xi = u32x4_shr(i32x4_mul(q, i32x4_splat(3)), 8);
                        store(y.as_mut_ptr().add(out), f32x4_mul(f32x4_convert_i32x4(i32x4_sub(xi, i32x4_splat(1))), d));
                    }
                    out += 4;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// TQ2_0: qs[64] (4 trits a byte, 2 bits each), d

pub fn quantize_tq2_0(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(TQ2_0_BYTES)) {
        unsafe {
            match simd_scale(x) {
                Some((d, id)) => tq2_0_block(x, y, d, id),
                None => tq2_0_block_scalar(x, y),
            }
        }
    }
}

unsafe fn tq2_0_block(x: &[f32], y: &mut [u8], d: f32, id: f32) {
    write_f16(y, 64, d);
    let p = x.as_ptr();
    let idv = f32x4_splat(id);
    for j in (0..64).step_by(32) {
        let mut q = [i32x4_splat(0); 8];
        for (k, slot) in q.iter_mut().enumerate() {
            let mut acc = i32x4_splat(0);
            for n in 0..4 {
                let t = trit4(f32x4_mul(load(p.add(4 * j + 4 * k + 32 * n)), idv));
                acc = i32x4_add(acc, i32x4_shl(v128_and(t, i32x4_splat(3)), 2 * n as u32));
            }
            *slot = acc;
        }
        store_bytes16(y.as_mut_ptr().add(j), q[0], q[1], q[2], q[3]);
        store_bytes16(y.as_mut_ptr().add(j + 16), q[4], q[5], q[6], q[7]);
    }
}

fn tq2_0_block_scalar(x: &[f32], y: &mut [u8]) {
    let (d, id) = scalar_scale(x);
    write_f16(y, 64, d);
    for j in (0..64).step_by(32) {
        for m in 0..32 {
            let mut q = 0u8;
            for n in 0..4 {
                let xi = trit(x[4 * j + m + 32 * n] * id);
                q = q.wrapping_add(((xi & 3) << (2 * n)) as u8);
            }
            y[j + m] = q;
        }
    }
}

pub fn dequantize_tq2_0(x: &[u8], y: &mut [f32]) {
    for (x, y) in x.chunks_exact(TQ2_0_BYTES).zip(y.chunks_exact_mut(QK_K)) {
        let d = f32x4_splat(read_f16(x, 64));
        let mut out = 0;
        for j in (0..64).step_by(32) {
            for l in 0..4 {
                for k in 0..8 {
                    unsafe {
                        let q = v128_and(u32x4_shr(load_bytes4(x.as_ptr().add(j + 4 * k)), 2 * l), i32x4_splat(3));
                        store(y.as_mut_ptr().add(out), f32x4_mul(f32x4_convert_i32x4(i32x4_sub(q, i32x4_splat(1))), d));
                    }
                    out += 4;
                }
            }
        }
    }
}
