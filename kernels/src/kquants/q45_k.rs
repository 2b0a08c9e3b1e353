//! Q4_K and Q5_K: 8 sub-blocks of 32, 6-bit scales and mins, make_qkx2_quants with weights
//! rms + |x|. The two differ only in nmax, the search grid and how the quants are packed.

use super::search::qkx2_superblock;
use super::search_scalar::make_qkx2_quants;
use super::*;
use crate::blocks::{BlockQ4K, BlockQ5K, GgmlBlock, Half};

const Q4_SEARCH: (f32, f32, i32) = (-1.0, 0.1, 20);
const Q5_SEARCH: (f32, f32, i32) = (-0.5, 0.1, 15);

/// d, dmin and the 12 bytes of packed 6-bit scales and mins of a Q4_K/Q5_K block.
struct Scales<'a> {
    d: &'a mut Half,
    dmin: &'a mut Half,
    packed: &'a mut [u8; 12],
}

/// The part of ggml's quantizer after the scale search, shared by both forms: pack scales
/// and mins, then re-quantize each sub-block with its rounded scale via `requant(j, d, dm)`.
fn scales_and_requantize(y: Scales, scales: &[f32; 8], mins: &[f32; 8], mut requant: impl FnMut(usize, f32, f32)) {
    let max_scale = positive_max(scales);
    let max_min = positive_max(mins);
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let out = y.packed;
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            out[j] = ls;
            out[j + 4] = lm;
        } else {
            out[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
            out[j - 4] |= (ls >> 4) << 6;
            out[j] |= (lm >> 4) << 6;
        }
    }
    *y.d = Half::from_f32(max_scale / 63.0);
    *y.dmin = Half::from_f32(max_min / 63.0);
    for j in 0..8 {
        let (sc, m) = get_scale_min_k4(j, out);
        let d = y.d.to_f32() * sc as f32;
        if d == 0.0 {
            continue;
        }
        let dm = y.dmin.to_f32() * m as f32;
        requant(j, d, dm);
    }
}

/// ggml's scalar body up to the final L (0..=nmax).
fn quantize_scalar_l(x: &[f32], y: Scales, nmax: i32, search: (f32, f32, i32)) -> [u8; QK_K] {
    let x = &x[..QK_K];
    let mut l = [0u8; QK_K];
    let mut weights = [0f32; 32];
    let (mut scales, mut mins) = ([0f32; 8], [0f32; 8]);
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for v in xs {
            sum_x2 += v * v;
        }
        let av_x = sqrtf(sum_x2 / 32.0);
        for (w, v) in weights.iter_mut().zip(xs) {
            *w = av_x + fabsf(*v);
        }
        scales[j] = make_qkx2_quants(nmax, xs, &weights, &mut l[32 * j..32 * j + 32], &mut mins[j], search, false);
    }
    scales_and_requantize(y, &scales, &mins, |j, d, dm| {
        for i in 32 * j..32 * j + 32 {
            l[i] = nearest_int((x[i] + dm) / d).min(nmax).max(0) as u8;
        }
    });
    l
}

/// ggml's Q4_K/Q5_K weights: av_x = sqrt(sum(x^2)/32), w = av_x + |x|.
fn rms_weights(g: &mut Group, n: usize) {
    let mut sum_x2 = ZERO;
    for i in 0..n {
        sum_x2 = f32x4_add(sum_x2, f32x4_mul(g.x[i], g.x[i]));
    }
    let av_x = f32x4_sqrt(f32x4_div(sum_x2, f32x4_splat(32.0)));
    for i in 0..n {
        g.w[i] = f32x4_add(av_x, f32x4_abs(g.x[i]));
    }
}

/// The SIMD body up to the final L (0..=nmax).
fn quantize_simd_l(x: &[f32], y: Scales, nmax: i32, search: (f32, f32, i32)) -> [i32; QK_K] {
    let x = &x[..QK_K];
    let mut l = [0i32; QK_K];
    let (mut scales, mut mins) = ([0f32; 8], [0f32; 8]);
    qkx2_superblock(x, 32, nmax, search, false, rms_weights, &mut scales, &mut mins, &mut l);
    scales_and_requantize(y, &scales, &mins, |j, d, dm| {
        requantize(&x[32 * j..32 * j + 32], d, Some(dm), 0, nmax, 0, &mut l[32 * j..32 * j + 32]);
    });
    l
}

/// Sub-block scales of run `run` (sub-blocks 2run, 2run+1) as (d1, m1, d2, m2).
#[inline(always)]
fn run_scales(d: Half, dmin: Half, packed: &[u8; 12], run: usize) -> (f32, f32, f32, f32) {
    let (d, min) = (d.to_f32(), dmin.to_f32());
    let (sc1, m1) = get_scale_min_k4(2 * run, packed);
    let (sc2, m2) = get_scale_min_k4(2 * run + 1, packed);
    (d * sc1 as f32, min * m1 as f32, d * sc2 as f32, min * m2 as f32)
}

impl GgmlBlock for BlockQ4K {
    const TYPE: u32 = 12;
    const BLCK: usize = QK_K;

    fn quantize_scalar(x: &[f32], y: &mut Self) {
        let l = quantize_scalar_l(x, Scales { d: &mut y.d, dmin: &mut y.dmin, packed: &mut y.scales }, 15, Q4_SEARCH);
        for (run, j) in (0..QK_K).step_by(64).enumerate() {
            for i in 0..32 {
                y.qs[32 * run + i] = l[j + i] | (l[j + i + 32] << 4);
            }
        }
    }

    fn quantize_simd(x: &[f32], y: &mut Self) {
        let l = quantize_simd_l(x, Scales { d: &mut y.d, dmin: &mut y.dmin, packed: &mut y.scales }, 15, Q4_SEARCH);
        // Byte i of run j holds L[j+i] | L[j+i+32] << 4.
        for j in (0..QK_K).step_by(64) {
            let mut v = [ZERO; 8];
            for (k, slot) in v.iter_mut().enumerate() {
                *slot = v128_or(load_i32(&l, j + 4 * k), i32x4_shl(load_i32(&l, j + 32 + 4 * k), 4));
            }
            put_bytes16(&mut y.qs, j / 2, &v[..4]);
            put_bytes16(&mut y.qs, j / 2 + 16, &v[4..]);
        }
    }

    fn dequantize_scalar(&self, y: &mut [f32]) {
        for (run, j) in (0..QK_K).step_by(64).enumerate() {
            let (d1, m1, d2, m2) = run_scales(self.d, self.dmin, &self.scales, run);
            let q = &self.qs[32 * run..32 * run + 32];
            for i in 0..32 {
                y[j + i] = d1 * (q[i] & 0xf) as f32 - m1;
            }
            for i in 0..32 {
                y[j + 32 + i] = d2 * (q[i] >> 4) as f32 - m2;
            }
        }
    }

    fn dequantize_simd(&self, y: &mut [f32]) {
        let y = exactly::<QK_K, _>(y);
        for run in 0..4 {
            let j = 64 * run;
            let (d1, m1, d2, m2) = run_scales(self.d, self.dmin, &self.scales, run);
            let (d1, m1, d2, m2) = (f32x4_splat(d1), f32x4_splat(m1), f32x4_splat(d2), f32x4_splat(m2));
            let q = &self.qs[32 * run..32 * run + 32];
            for k in 0..8 {
                let qv = load_quads(q, 4 * k);
                let lo = f32x4_convert_i32x4(v128_and(qv, i32x4_splat(0xf)));
                let hi = f32x4_convert_i32x4(u32x4_shr(qv, 4));
                store4(y, j + 4 * k, f32x4_sub(f32x4_mul(d1, lo), m1));
                store4(y, j + 32 + 4 * k, f32x4_sub(f32x4_mul(d2, hi), m2));
            }
        }
    }
}

impl GgmlBlock for BlockQ5K {
    const TYPE: u32 = 13;
    const BLCK: usize = QK_K;

    fn quantize_scalar(x: &[f32], y: &mut Self) {
        let l = quantize_scalar_l(x, Scales { d: &mut y.d, dmin: &mut y.dmin, packed: &mut y.scales }, 31, Q5_SEARCH);
        y.qh = [0; QK_K / 8];
        let (mut m1, mut m2) = (1u8, 2u8);
        for (run, n) in (0..QK_K).step_by(64).enumerate() {
            for j in 0..32 {
                let mut l1 = l[n + j];
                if l1 > 15 {
                    l1 -= 16;
                    y.qh[j] |= m1;
                }
                let mut l2 = l[n + j + 32];
                if l2 > 15 {
                    l2 -= 16;
                    y.qh[j] |= m2;
                }
                y.qs[32 * run + j] = l1 | (l2 << 4);
            }
            m1 <<= 2;
            m2 <<= 2;
        }
    }

    fn quantize_simd(x: &[f32], y: &mut Self) {
        let l = quantize_simd_l(x, Scales { d: &mut y.d, dmin: &mut y.dmin, packed: &mut y.scales }, 31, Q5_SEARCH);
        // Run n/64 uses qh bits 2n/64 and 2n/64+1.
        let mut qh = [ZERO; 8];
        for (run, n) in (0..QK_K).step_by(64).enumerate() {
            let (m1, m2) = (i32x4_splat(1 << (2 * run)), i32x4_splat(2 << (2 * run)));
            let mut v = [ZERO; 8];
            for k in 0..8 {
                let l1 = load_i32(&l, n + 4 * k);
                let l2 = load_i32(&l, n + 32 + 4 * k);
                let (h1, h2) = (i32x4_gt(l1, i32x4_splat(15)), i32x4_gt(l2, i32x4_splat(15)));
                qh[k] = v128_or(qh[k], v128_or(v128_and(h1, m1), v128_and(h2, m2)));
                let l1 = i32x4_sub(l1, v128_and(h1, i32x4_splat(16)));
                let l2 = i32x4_sub(l2, v128_and(h2, i32x4_splat(16)));
                v[k] = v128_and(v128_or(l1, i32x4_shl(l2, 4)), i32x4_splat(0xff));
            }
            put_bytes16(&mut y.qs, 32 * run, &v[..4]);
            put_bytes16(&mut y.qs, 32 * run + 16, &v[4..]);
        }
        put_bytes16(&mut y.qh, 0, &qh[..4]);
        put_bytes16(&mut y.qh, 16, &qh[4..]);
    }

    fn dequantize_scalar(&self, y: &mut [f32]) {
        let (mut u1, mut u2) = (1u8, 2u8);
        for (run, j) in (0..QK_K).step_by(64).enumerate() {
            let (d1, m1, d2, m2) = run_scales(self.d, self.dmin, &self.scales, run);
            let ql = &self.qs[32 * run..32 * run + 32];
            for i in 0..32 {
                let high = if self.qh[i] & u1 != 0 { 16 } else { 0 };
                y[j + i] = d1 * ((ql[i] & 0xf) as i32 + high) as f32 - m1;
            }
            for i in 0..32 {
                let high = if self.qh[i] & u2 != 0 { 16 } else { 0 };
                y[j + 32 + i] = d2 * ((ql[i] >> 4) as i32 + high) as f32 - m2;
            }
            u1 <<= 2;
            u2 <<= 2;
        }
    }

    fn dequantize_simd(&self, y: &mut [f32]) {
        let y = exactly::<QK_K, _>(y);
        for run in 0..4 {
            let j = 64 * run;
            let (d1, m1, d2, m2) = run_scales(self.d, self.dmin, &self.scales, run);
            let (d1, m1, d2, m2) = (f32x4_splat(d1), f32x4_splat(m1), f32x4_splat(d2), f32x4_splat(m2));
            let (u1, u2) = (u32x4_splat(1 << (2 * run)), u32x4_splat(2 << (2 * run)));
            for k in 0..8 {
                let qv = load_quads(&self.qs, 32 * run + 4 * k);
                let hv = load_quads(&self.qh, 4 * k);
                let b1 = v128_and(i32x4_ne(v128_and(hv, u1), i32x4_splat(0)), i32x4_splat(16));
                let b2 = v128_and(i32x4_ne(v128_and(hv, u2), i32x4_splat(0)), i32x4_splat(16));
                let lo = f32x4_convert_i32x4(i32x4_add(v128_and(qv, i32x4_splat(0xf)), b1));
                let hi = f32x4_convert_i32x4(i32x4_add(u32x4_shr(qv, 4), b2));
                store4(y, j + 4 * k, f32x4_sub(f32x4_mul(d1, lo), m1));
                store4(y, j + 32 + 4 * k, f32x4_sub(f32x4_mul(d2, hi), m2));
            }
        }
    }
}
