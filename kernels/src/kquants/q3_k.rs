//! Q3_K: 16 sub-blocks of 16, 3-bit quants (2 low bits in qs, the high bit in hmask),
//! 6-bit signed scales (make_q3_quants).

use super::search::make_q3_xg;
use super::search_scalar::make_q3_quants;
use super::*;
use crate::blocks::{BlockQ3K, GgmlBlock, Half};

/// ggml's 6-bit signed scale packing and d, shared by both forms.
fn pack_scales(y: &mut BlockQ3K, scales: &[f32; 16]) {
    let (max_scale, _) = signed_absmax(scales);
    y.scales = [0; 12];
    if max_scale != 0.0 {
        let iscale = -32.0 / max_scale;
        for j in 0..16 {
            let mut lj = nearest_int(iscale * scales[j]) as i8 as i32; // stored in an int8_t
            lj = lj.min(31).max(-32) + 32;
            if j < 8 {
                y.scales[j] = (lj & 0xf) as u8;
            } else {
                y.scales[j - 8] |= ((lj & 0xf) << 4) as u8;
            }
            lj >>= 4;
            y.scales[j % 4 + 8] |= (lj << (2 * (j / 4))) as u8;
        }
        y.d = Half::from_f32(1.0 / iscale);
    } else {
        y.d = Half::from_f32(0.0);
    }
}

/// Sub-block j's scale as quantize_row_q3_K_ref reads it back (-32..=31).
#[inline(always)]
fn scale(sc: &[u8; 12], j: usize) -> i8 {
    let low = if j < 8 { sc[j] & 0xf } else { sc[j - 8] >> 4 };
    ((low | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) as i32 - 32) as i8
}

impl GgmlBlock for BlockQ3K {
    const TYPE: u32 = 11;
    const BLCK: usize = QK_K;

    fn quantize_scalar(x: &[f32], y: &mut Self) {
        let x = &x[..QK_K];
        let mut l = [0i8; QK_K];
        let mut scales = [0f32; 16];
        for j in 0..16 {
            scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
        }
        pack_scales(y, &scales);
        for j in 0..16 {
            let d = y.d.to_f32() * scale(&y.scales, j) as f32;
            if d == 0.0 {
                continue;
            }
            for i in 16 * j..16 * j + 16 {
                l[i] = (nearest_int(x[i] / d).min(3).max(-4) + 4) as i8;
            }
        }
        y.hmask = [0; QK_K / 8];
        let (mut m, mut hm) = (0, 1u8);
        for lj in l.iter_mut() {
            if *lj > 3 {
                y.hmask[m] |= hm;
                *lj -= 4;
            }
            m += 1;
            if m == QK_K / 8 {
                m = 0;
                hm <<= 1;
            }
        }
        pack_2bit_scalar(&l.map(|v| v as u8), &mut y.qs);
    }

    fn quantize_simd(x: &[f32], y: &mut Self) {
        let x = &x[..QK_K];
        let mut l = [0i32; QK_K];
        let mut scales = [0f32; 16];
        let mut gs = [Group::new(), Group::new(), Group::new(), Group::new()];
        for (group, g) in gs.iter_mut().enumerate() {
            // SAFETY: 64 floats from 64 * group are within the 256 of x.
            unsafe { to_lanes(x.as_ptr().add(64 * group), 16, &mut g.x) };
        }
        let s = make_q3_xg(4, &mut gs);
        for (group, g) in gs.iter().enumerate() {
            scales[4 * group..4 * group + 4].copy_from_slice(&lanes(s[group]));
            from_lanes(&g.l, 16, &mut l[64 * group..64 * group + 64]);
        }
        pack_scales(y, &scales);
        let d_all = y.d.to_f32();
        for j in 0..16 {
            let d = d_all * scale(&y.scales, j) as f32;
            if d == 0.0 {
                continue;
            }
            requantize(&x[16 * j..16 * j + 16], d, None, -4, 3, 4, &mut l[16 * j..16 * j + 16]);
        }
        // High bit of quant j goes to bit j/32 of hmask[j%32].
        let mut hm = [ZERO; 8];
        for bit in 0..8 {
            for (k, h) in hm.iter_mut().enumerate() {
                let at = 32 * bit + 4 * k;
                let v = load_i32(&l, at);
                let high = i32x4_gt(v, i32x4_splat(3));
                *h = v128_or(*h, v128_and(high, i32x4_splat(1 << bit)));
                store_i32(&mut l, at, i32x4_sub(v, v128_and(high, i32x4_splat(4))));
            }
        }
        put_bytes16(&mut y.hmask, 0, &hm[..4]);
        put_bytes16(&mut y.hmask, 16, &hm[4..]);
        pack_2bit(&l, &mut y.qs);
    }

    fn dequantize_scalar(&self, y: &mut [f32]) {
        const KMASK1: u32 = 0x0303_0303;
        const KMASK2: u32 = 0x0f0f_0f0f;
        let d_all = self.d.to_f32();
        let word = |k: usize| u32::from_le_bytes([self.scales[4 * k], self.scales[4 * k + 1], self.scales[4 * k + 2], self.scales[4 * k + 3]]);
        let (a0, a1, tmp) = (word(0), word(1), word(2));
        let aux = [
            (a0 & KMASK2) | ((tmp & KMASK1) << 4),
            (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
            ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
            ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
        ];
        let scales = |is: usize| (aux[is / 4] >> (8 * (is % 4))) as u8 as i8;
        let (mut is, mut out, mut m) = (0, 0, 1u8);
        for n in (0..QK_K).step_by(128) {
            let q = &self.qs[n / 4..n / 4 + 32];
            for shift in (0..8).step_by(2) {
                for half in 0..2 {
                    let dl = d_all * (scales(is) as i32 - 32) as f32;
                    is += 1;
                    for i in 16 * half..16 * half + 16 {
                        let high = if self.hmask[i] & m != 0 { 0 } else { 4 };
                        y[out] = dl * (((q[i] >> shift) & 3) as i32 - high) as f32;
                        out += 1;
                    }
                }
                m <<= 1;
            }
        }
    }

    fn dequantize_simd(&self, y: &mut [f32]) {
        let y = exactly::<QK_K, _>(y);
        let d_all = self.d.to_f32();
        let mut scales = [0i32; 16];
        for (j, s) in scales.iter_mut().enumerate() {
            *s = scale(&self.scales, j) as i32;
        }
        // ggml's order: 128-element halves, then the four 2-bit shifts (hmask bit 4h + s),
        // then 16-element runs.
        for h in 0..2 {
            let q = &self.qs[32 * h..32 * h + 32];
            for s in 0..4 {
                let m = u32x4_splat(1 << (4 * h + s));
                for half in 0..2 {
                    let dl = f32x4_splat(d_all * scales[8 * h + 2 * s + half] as f32);
                    for k in 0..4 {
                        let at = 16 * half + 4 * k;
                        let low = v128_and(u32x4_shr(load_quads(q, at), 2 * s as u32), i32x4_splat(3));
                        let no_high = i32x4_eq(v128_and(load_quads(&self.hmask, at), m), i32x4_splat(0));
                        let v = i32x4_sub(low, v128_and(no_high, i32x4_splat(4)));
                        store4(y, 128 * h + 32 * s + 16 * half + 4 * k, f32x4_mul(dl, f32x4_convert_i32x4(v)));
                    }
                }
            }
        }
    }
}
