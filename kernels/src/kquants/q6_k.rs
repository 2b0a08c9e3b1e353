//! Q6_K: 16 sub-blocks of 16, 6-bit quants (4 low bits in ql, 2 high in qh), int8 scales
//! (make_qx_quants with x² weights).

use super::search::make_qx_x4;
use super::search_scalar::make_qx_quants;
use super::*;
use crate::blocks::{BlockQ6K, GgmlBlock, Half};

const ZERO_BLOCK: BlockQ6K = BlockQ6K { ql: [0; QK_K / 2], qh: [0; QK_K / 4], scales: [0; QK_K / 16], d: Half::ZERO };

/// The int8 scales and d, shared by both forms; false for an all-zero block, which ggml
/// writes as zeros throughout (d = fp16(0) included).
fn pack_scales(y: &mut BlockQ6K, scales: &[f32; 16]) -> bool {
    let (max_scale, max_abs_scale) = signed_absmax(scales);
    if max_abs_scale < GROUP_MAX_EPS {
        *y = ZERO_BLOCK;
        return false;
    }
    let iscale = -128.0 / max_scale;
    y.d = Half::from_f32(1.0 / iscale);
    for ib in 0..16 {
        y.scales[ib] = nearest_int(iscale * scales[ib]).min(127) as u8;
    }
    true
}

impl GgmlBlock for BlockQ6K {
    const TYPE: u32 = 14;
    const BLCK: usize = QK_K;

    fn quantize_scalar(x: &[f32], y: &mut Self) {
        let x = &x[..QK_K];
        let mut l = [0i8; QK_K];
        let mut scales = [0f32; 16];
        for ib in 0..16 {
            scales[ib] = make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..16 * ib + 16]);
        }
        if !pack_scales(y, &scales) {
            return;
        }
        for j in 0..16 {
            let d = y.d.to_f32() * (y.scales[j] as i8) as f32;
            if d == 0.0 {
                continue;
            }
            for i in 16 * j..16 * j + 16 {
                l[i] = (nearest_int(x[i] / d).min(31).max(-32) + 32) as i8;
            }
        }
        let l = l.map(|v| v as u8);
        for (half, j) in (0..QK_K).step_by(128).enumerate() {
            let (ql, qh) = (&mut y.ql[64 * half..64 * half + 64], &mut y.qh[32 * half..32 * half + 32]);
            for i in 0..32 {
                let (q1, q2, q3, q4) = (l[j + i] & 0xf, l[j + i + 32] & 0xf, l[j + i + 64] & 0xf, l[j + i + 96] & 0xf);
                ql[i] = q1 | (q3 << 4);
                ql[i + 32] = q2 | (q4 << 4);
                qh[i] = (l[j + i] >> 4) | ((l[j + i + 32] >> 4) << 2) | ((l[j + i + 64] >> 4) << 4) | ((l[j + i + 96] >> 4) << 6);
            }
        }
    }

    fn quantize_simd(x: &[f32], y: &mut Self) {
        let x = &x[..QK_K];
        let mut l = [0i32; QK_K];
        let mut scales = [0f32; 16];
        let mut g = Group::new();
        for group in 0..4 {
            // SAFETY: 64 floats from 64 * group are within the 256 of x.
            unsafe { to_lanes(x.as_ptr().add(64 * group), 16, &mut g.x) };
            let s = make_qx_x4(32, &mut g);
            scales[4 * group..4 * group + 4].copy_from_slice(&lanes(s));
            from_lanes(&g.l, 16, &mut l[64 * group..64 * group + 64]);
        }
        if !pack_scales(y, &scales) {
            return;
        }
        let d_all = y.d.to_f32();
        for j in 0..16 {
            let d = d_all * (y.scales[j] as i8) as f32;
            if d == 0.0 {
                continue;
            }
            requantize(&x[16 * j..16 * j + 16], d, None, -32, 31, 32, &mut l[16 * j..16 * j + 16]);
        }
        for (half, j) in (0..QK_K).step_by(128).enumerate() {
            let (mut a, mut b, mut h) = ([ZERO; 8], [ZERO; 8], [ZERO; 8]);
            for k in 0..8 {
                let at = j + 4 * k;
                let (l1, l2, l3, l4) = (load_i32(&l, at), load_i32(&l, at + 32), load_i32(&l, at + 64), load_i32(&l, at + 96));
                let nib = |v: v128| v128_and(v, i32x4_splat(0xf));
                a[k] = v128_or(nib(l1), i32x4_shl(nib(l3), 4));
                b[k] = v128_or(nib(l2), i32x4_shl(nib(l4), 4));
                let top = |v: v128, s: u32| i32x4_shl(i32x4_shr(v, 4), s);
                h[k] = v128_and(v128_or(v128_or(top(l1, 0), top(l2, 2)), v128_or(top(l3, 4), top(l4, 6))), i32x4_splat(0xff));
            }
            let ql = 64 * half;
            put_bytes16(&mut y.ql, ql, &a[..4]);
            put_bytes16(&mut y.ql, ql + 16, &a[4..]);
            put_bytes16(&mut y.ql, ql + 32, &b[..4]);
            put_bytes16(&mut y.ql, ql + 48, &b[4..]);
            put_bytes16(&mut y.qh, 32 * half, &h[..4]);
            put_bytes16(&mut y.qh, 32 * half + 16, &h[4..]);
        }
    }

    fn dequantize_scalar(&self, y: &mut [f32]) {
        let d = self.d.to_f32();
        for (half, n) in (0..QK_K).step_by(128).enumerate() {
            let ql = &self.ql[64 * half..64 * half + 64];
            let qh = &self.qh[32 * half..32 * half + 32];
            let sc = |i: usize| self.scales[8 * half + i] as i8 as f32;
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i8 - 32;
                let q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                y[n + l] = d * sc(is) * q1 as f32;
                y[n + l + 32] = d * sc(is + 2) * q2 as f32;
                y[n + l + 64] = d * sc(is + 4) * q3 as f32;
                y[n + l + 96] = d * sc(is + 6) * q4 as f32;
            }
        }
    }

    fn dequantize_simd(&self, y: &mut [f32]) {
        let y = exactly::<QK_K, _>(y);
        let d = self.d.to_f32();
        for half in 0..2 {
            let n = 128 * half;
            let ql = &self.ql[64 * half..64 * half + 64];
            let qh = &self.qh[32 * half..32 * half + 32];
            let sc = &self.scales[8 * half..8 * half + 8];
            for k in 0..8 {
                let is = (4 * k) / 16;
                let (a, b, h) = (load_quads(ql, 4 * k), load_quads(ql, 32 + 4 * k), load_quads(qh, 4 * k));
                let six = |low: v128, s: u32| i32x4_sub(v128_or(low, i32x4_shl(v128_and(u32x4_shr(h, s), i32x4_splat(3)), 4)), i32x4_splat(32));
                let q1 = six(v128_and(a, i32x4_splat(0xf)), 0);
                let q2 = six(v128_and(b, i32x4_splat(0xf)), 2);
                let q3 = six(u32x4_shr(a, 4), 4);
                let q4 = six(u32x4_shr(b, 4), 6);
                let ds = |i: usize| f32x4_splat(d * (sc[i] as i8) as f32);
                store4(y, n + 4 * k, f32x4_mul(ds(is), f32x4_convert_i32x4(q1)));
                store4(y, n + 4 * k + 32, f32x4_mul(ds(is + 2), f32x4_convert_i32x4(q2)));
                store4(y, n + 4 * k + 64, f32x4_mul(ds(is + 4), f32x4_convert_i32x4(q3)));
                store4(y, n + 4 * k + 96, f32x4_mul(ds(is + 6), f32x4_convert_i32x4(q4)));
            }
        }
    }
}
