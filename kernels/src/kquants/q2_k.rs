//! Q2_K: 16 sub-blocks of 16, 2-bit quants, 4-bit scales and mins (make_qkx2_quants with
//! |x| as weights).

use super::search::qkx2_superblock;
use super::search_scalar::make_qkx2_quants;
use super::*;
use crate::blocks::{BlockQ2K, GgmlBlock, Half};

const Q4SCALE: f32 = 15.0;
const SEARCH: (f32, f32, i32) = (-0.5, 0.1, 15);

/// The part of ggml's quantizer after the scale search, shared by both forms: 4-bit scales
/// and mins, then the re-quantization of each sub-block with its rounded scale, which
/// `requant(j, d, dm)` performs.
fn scales_and_requantize(y: &mut BlockQ2K, scales: &[f32; 16], mins: &[f32; 16], mut requant: impl FnMut(usize, f32, f32)) {
    let max_scale = positive_max(scales);
    let max_min = positive_max(mins);
    if max_scale > 0.0 {
        let iscale = Q4SCALE / max_scale;
        for j in 0..16 {
            y.scales[j] = nearest_int(iscale * scales[j]) as u8;
        }
        y.d = Half::from_f32(max_scale / Q4SCALE);
    } else {
        y.scales = [0; 16];
        y.d = Half::from_f32(0.0);
    }
    if max_min > 0.0 {
        let iscale = Q4SCALE / max_min;
        for j in 0..16 {
            y.scales[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
        }
        y.dmin = Half::from_f32(max_min / Q4SCALE);
    } else {
        y.dmin = Half::from_f32(0.0);
    }
    for j in 0..16 {
        let d = y.d.to_f32() * (y.scales[j] & 0xf) as f32;
        if d == 0.0 {
            continue;
        }
        let dm = y.dmin.to_f32() * (y.scales[j] >> 4) as f32;
        requant(j, d, dm);
    }
}

impl GgmlBlock for BlockQ2K {
    const TYPE: u32 = 10;
    const BLCK: usize = QK_K;

    fn quantize_scalar(x: &[f32], y: &mut Self) {
        let x = &x[..QK_K];
        let mut l = [0u8; QK_K];
        let mut weights = [0f32; 16];
        let (mut scales, mut mins) = ([0f32; 16], [0f32; 16]);
        for j in 0..16 {
            let xs = &x[16 * j..16 * j + 16];
            for (w, v) in weights.iter_mut().zip(xs) {
                *w = fabsf(*v);
            }
            scales[j] = make_qkx2_quants(3, xs, &weights, &mut l[16 * j..16 * j + 16], &mut mins[j], SEARCH, true);
        }
        scales_and_requantize(y, &scales, &mins, |j, d, dm| {
            for i in 16 * j..16 * j + 16 {
                l[i] = nearest_int((x[i] + dm) / d).min(3).max(0) as u8;
            }
        });
        pack_2bit_scalar(&l, &mut y.qs);
    }

    fn quantize_simd(x: &[f32], y: &mut Self) {
        let x = &x[..QK_K];
        let mut l = [0i32; QK_K];
        let (mut scales, mut mins) = ([0f32; 16], [0f32; 16]);
        let abs_weights = |g: &mut Group, n: usize| {
            for i in 0..n {
                g.w[i] = f32x4_abs(g.x[i]);
            }
        };
        qkx2_superblock(x, 16, 3, SEARCH, true, abs_weights, &mut scales, &mut mins, &mut l);
        scales_and_requantize(y, &scales, &mins, |j, d, dm| {
            requantize(&x[16 * j..16 * j + 16], d, Some(dm), 0, 3, 0, &mut l[16 * j..16 * j + 16]);
        });
        pack_2bit(&l, &mut y.qs);
    }

    fn dequantize_scalar(&self, y: &mut [f32]) {
        let d = self.d.to_f32();
        let min = self.dmin.to_f32();
        let mut out = 0;
        let mut is = 0;
        for n in (0..QK_K).step_by(128) {
            let q = &self.qs[n / 4..n / 4 + 32];
            for shift in (0..8).step_by(2) {
                for half in 0..2 {
                    let sc = self.scales[is];
                    is += 1;
                    let (dl, ml) = (d * (sc & 0xf) as f32, min * (sc >> 4) as f32);
                    for &b in &q[16 * half..16 * half + 16] {
                        y[out] = dl * ((b >> shift) & 3) as f32 - ml;
                        out += 1;
                    }
                }
            }
        }
    }

    fn dequantize_simd(&self, y: &mut [f32]) {
        let y = exactly::<QK_K, _>(y);
        let d = self.d.to_f32();
        let min = self.dmin.to_f32();
        // ggml's order: 128-element halves, then the four 2-bit shifts, then 16-element runs.
        for h in 0..2 {
            let q = &self.qs[32 * h..32 * h + 32];
            for s in 0..4 {
                for half in 0..2 {
                    let sc = self.scales[8 * h + 2 * s + half];
                    let dl = f32x4_splat(d * (sc & 0xf) as f32);
                    let ml = f32x4_splat(min * (sc >> 4) as f32);
                    for k in 0..4 {
                        let v = v128_and(u32x4_shr(load_quads(q, 16 * half + 4 * k), 2 * s as u32), i32x4_splat(3));
                        store4(y, 128 * h + 32 * s + 16 * half + 4 * k, f32x4_sub(f32x4_mul(dl, f32x4_convert_i32x4(v)), ml));
                    }
                }
            }
        }
    }
}
