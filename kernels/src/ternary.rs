//! TQ1_0 and TQ2_0: ternary super-blocks of 256 (BitNet b1.58 / TriLM), scale = abs-max.
//!
//! Every element is independent once the scale is known, so the SIMD path runs across
//! consecutive output bytes. It needs |x * id| <= 1, which holds whenever the scale and its
//! inverse are finite; blocks with NaN, infinities or a subnormal scale whose inverse
//! overflows take the scalar path, which mirrors ggml's use of lroundf and uint8 arithmetic.

use crate::blocks::{BlockTQ1_0, BlockTQ2_0, GgmlBlock, Half};
use crate::common::*;
use crate::simd::*;

/// (d, id) for the SIMD path, or None when the block needs the scalar path.
#[inline(always)]
fn simd_scale(x: &[f32]) -> Option<(f32, f32)> {
    let mut m = f32x4_splat(0.0);
    let mut nan = f32x4_splat(0.0);
    for i in (0..QK_K).step_by(4) {
        let v = load4(x, i);
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

#[inline(always)]
fn load4(x: &[f32], at: usize) -> v128 {
    let four = &x[at..at + 4];
    // SAFETY: `four` is four readable floats; v128 loads need no alignment.
    unsafe { load(four.as_ptr()) }
}

/// Sixteen bytes from four i32x4 vectors holding 0..=255, into `out[at..at + 16]`.
#[inline(always)]
fn put_bytes16(out: &mut [u8], at: usize, v: &[v128]) {
    let sixteen = &mut out[at..at + 16];
    // SAFETY: `sixteen` is 16 writable bytes.
    unsafe { store_bytes16(sixteen.as_mut_ptr(), v[0], v[1], v[2], v[3]) }
}

/// Four bytes of `q` from `at`, zero-extended into i32 lanes.
#[inline(always)]
fn quads(q: &[u8], at: usize) -> v128 {
    let four = &q[at..at + 4];
    // SAFETY: `four` is four readable bytes.
    unsafe { load_bytes4(four.as_ptr()) }
}

#[inline(always)]
fn store4(y: &mut [f32], at: usize, v: v128) {
    let four = &mut y[at..at + 4];
    // SAFETY: `four` is four writable floats.
    unsafe { store(four.as_mut_ptr(), v) }
}

/// ggml's trit decoding of one byte times 3^n: ((uint8)(q * pow3) * 3) >> 8, minus 1.
#[inline(always)]
fn untrit(q: u8, pow: u8) -> i32 {
    ((q.wrapping_mul(pow) as u16 * 3) >> 8) as i32 - 1
}

// ---------------------------------------------------------------------------------------
// TQ1_0: qs[48] (5 trits a byte), qh[4] (4 trits a byte), d

impl GgmlBlock for BlockTQ1_0 {
    const TYPE: u32 = 34;
    const BLCK: usize = QK_K;

    fn quantize_scalar(x: &[f32], y: &mut Self) {
        let (d, id) = scalar_scale(x);
        y.d = Half::from_f32(d);
        // Byte m of a run of `len` bytes starting at element `base` holds x[base + m + n*len].
        let pack = |qs: &mut [u8], base: usize, len: usize| {
            for m in 0..len {
                let mut q = 0u8;
                for n in 0..5 {
                    q = q.wrapping_mul(3).wrapping_add(trit(x[base + m + n * len] * id) as u8);
                }
                qs[m] = ceil_div243_scalar(q);
            }
        };
        pack(&mut y.qs[..32], 0, 32);
        pack(&mut y.qs[32..], 160, 16);
        for j in 0..4 {
            let mut q = 0u8;
            for m in 0..4 {
                q = q.wrapping_mul(3).wrapping_add(trit(x[240 + j + 4 * m] * id) as u8);
            }
            y.qh[j] = ceil_div243_scalar(q.wrapping_mul(3));
        }
    }

    fn quantize_simd(x: &[f32], y: &mut Self) {
        let (d, id) = match simd_scale(x) {
            Some(v) => v,
            None => return Self::quantize_scalar(x, y),
        };
        y.d = Half::from_f32(d);
        let idv = f32x4_splat(id);
        let t = |at: usize| trit4(f32x4_mul(load4(x, at), idv));
        let run = |qs: &mut [u8], base: usize, len: usize| {
            let mut q = [i32x4_splat(0); 8];
            for (k, slot) in q.iter_mut().enumerate().take(len / 4) {
                let mut acc = t(base + 4 * k);
                for n in 1..5 {
                    acc = i32x4_add(i32x4_mul(acc, i32x4_splat(3)), t(base + 4 * k + n * len));
                }
                *slot = ceil_div243(acc);
            }
            for k in (0..len / 4).step_by(4) {
                put_bytes16(qs, 4 * k, &q[k..k + 4]);
            }
        };
        run(&mut y.qs[..32], 0, 32);
        run(&mut y.qs[32..], 160, 16);
        // qh: byte j holds x[240 + j + 4m], m = 0..4, then one more *3 to fill the 5-trit slot.
        let mut acc = t(240);
        for m in 1..4 {
            acc = i32x4_add(i32x4_mul(acc, i32x4_splat(3)), t(240 + 4 * m));
        }
        // SAFETY: qh is 4 writable bytes.
        unsafe { store_bytes4(y.qh.as_mut_ptr(), ceil_div243(i32x4_mul(acc, i32x4_splat(3)))) };
    }

    fn dequantize_scalar(&self, y: &mut [f32]) {
        const POW3: [u8; 5] = [1, 3, 9, 27, 81];
        let d = self.d.to_f32();
        let mut out = 0;
        for (bytes, trits) in [(&self.qs[..32], 5), (&self.qs[32..], 5), (&self.qh[..], 4)] {
            for &pow in &POW3[..trits] {
                for &q in bytes {
                    y[out] = untrit(q, pow) as f32 * d;
                    out += 1;
                }
            }
        }
    }

    fn dequantize_simd(&self, y: &mut [f32]) {
        const POW3: [i32; 5] = [1, 3, 9, 27, 81];
        let y = exactly::<QK_K, _>(y);
        let d = f32x4_splat(self.d.to_f32());
        // Trit n of four bytes from `at`: ((uint8)(q * 3^n) * 3) >> 8, minus 1.
        #[inline(always)]
        fn trits(bytes: &[u8], at: usize, pow: i32, d: v128) -> v128 {
            let q = v128_and(i32x4_mul(quads(bytes, at), i32x4_splat(pow)), i32x4_splat(0xff));
            let xi = u32x4_shr(i32x4_mul(q, i32x4_splat(3)), 8);
            f32x4_mul(f32x4_convert_i32x4(i32x4_sub(xi, i32x4_splat(1))), d)
        }
        // ggml's output order: qs[0..32] five times, qs[32..48] five times, qh four times.
        for n in 0..5 {
            for k in 0..8 {
                store4(y, 32 * n + 4 * k, trits(&self.qs, 4 * k, POW3[n], d));
            }
        }
        for n in 0..5 {
            for k in 0..4 {
                store4(y, 160 + 16 * n + 4 * k, trits(&self.qs, 32 + 4 * k, POW3[n], d));
            }
        }
        for n in 0..4 {
            store4(y, 240 + 4 * n, trits(&self.qh, 0, POW3[n], d));
        }
    }
}

// ---------------------------------------------------------------------------------------
// TQ2_0: qs[64] (4 trits a byte, 2 bits each), d

impl GgmlBlock for BlockTQ2_0 {
    const TYPE: u32 = 35;
    const BLCK: usize = QK_K;

    fn quantize_scalar(x: &[f32], y: &mut Self) {
        let (d, id) = scalar_scale(x);
        y.d = Half::from_f32(d);
        for j in (0..64).step_by(32) {
            for m in 0..32 {
                let mut q = 0u8;
                for n in 0..4 {
                    let xi = trit(x[4 * j + m + 32 * n] * id);
                    q = q.wrapping_add(((xi & 3) << (2 * n)) as u8);
                }
                y.qs[j + m] = q;
            }
        }
    }

    fn quantize_simd(x: &[f32], y: &mut Self) {
        let (d, id) = match simd_scale(x) {
            Some(v) => v,
            None => return Self::quantize_scalar(x, y),
        };
        y.d = Half::from_f32(d);
        let idv = f32x4_splat(id);
        for j in (0..64).step_by(32) {
            let mut q = [i32x4_splat(0); 8];
            for (k, slot) in q.iter_mut().enumerate() {
                let mut acc = i32x4_splat(0);
                for n in 0..4 {
                    let t = trit4(f32x4_mul(load4(x, 4 * j + 4 * k + 32 * n), idv));
                    acc = i32x4_add(acc, i32x4_shl(v128_and(t, i32x4_splat(3)), 2 * n as u32));
                }
                *slot = acc;
            }
            put_bytes16(&mut y.qs, j, &q[..4]);
            put_bytes16(&mut y.qs, j + 16, &q[4..]);
        }
    }

    fn dequantize_scalar(&self, y: &mut [f32]) {
        let d = self.d.to_f32();
        let mut out = 0;
        for j in (0..64).step_by(32) {
            for l in 0..4 {
                for m in 0..32 {
                    let q = ((self.qs[j + m] >> (2 * l)) & 3) as i32;
                    y[out] = (q - 1) as f32 * d;
                    out += 1;
                }
            }
        }
    }

    fn dequantize_simd(&self, y: &mut [f32]) {
        let y = exactly::<QK_K, _>(y);
        let d = f32x4_splat(self.d.to_f32());
        for h in 0..2 {
            for l in 0..4 {
                for k in 0..8 {
                    let q = v128_and(u32x4_shr(quads(&self.qs, 32 * h + 4 * k), 2 * l as u32), i32x4_splat(3));
                    store4(y, 128 * h + 32 * l + 4 * k, f32x4_mul(f32x4_convert_i32x4(i32x4_sub(q, i32x4_splat(1))), d));
                }
            }
        }
    }
}
