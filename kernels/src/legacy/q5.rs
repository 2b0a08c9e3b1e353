//! Q5_0 (d = max / -16, q = min(31, (int8)(x/d + 16.5))) and Q5_1 (d = (max - min) / 31,
//! q = (uint8)((x - min)/d + 0.5), no clamp in ggml); the 5th bits gathered in qh.

use super::*;
use crate::blocks::{BlockQ5_0, BlockQ5_1, GgmlBlock, Half};

/// ggml's packing of 32 five-bit quants: low nibbles in qs, bit 4 of quant j in bit j of qh.
fn pack_fives(q: &[u8; 32], qh: &mut [u8; 4], qs: &mut [u8; 16]) {
    let mut h = 0u32;
    for j in 0..16 {
        let (xi0, xi1) = (q[j], q[j + 16]);
        qs[j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
        h |= (((xi0 & 0x10) >> 4) as u32) << j;
        h |= (((xi1 & 0x10) >> 4) as u32) << (j + 16);
    }
    *qh = h.to_le_bytes();
}

/// ggml's unpacking: (quant j, quant j + 16) with their 5th bits restored.
#[inline(always)]
fn unpack_five(qh: u32, qs: &[u8; 16], j: usize) -> (i32, i32) {
    let xh_0 = (((qh >> j) << 4) & 0x10) as u8;
    let xh_1 = ((qh >> (j + 12)) & 0x10) as u8;
    (((qs[j] & 0x0f) | xh_0) as i32, ((qs[j] >> 4) | xh_1) as i32)
}

impl GgmlBlock for BlockQ5_0 {
    const TYPE: u32 = 6;
    const BLCK: usize = QK;

    fn quantize_scalar(x: &[f32], y: &mut Self) {
        let max = scalar_signed_absmax(&x[..QK]);
        let d = max / -16.0;
        let id = inverse(d);
        y.d = Half::from_f32(d);
        let mut q = [0u8; 32];
        for j in 0..QK {
            q[j] = to_i8(x[j] * id + 16.5).min(31) as u8;
        }
        pack_fives(&q, &mut y.qh, &mut y.qs);
    }

    fn quantize_simd(x: &[f32], y: &mut Self) {
        let b = Lanes32::load(x);
        let max = match b.finite_signed_absmax(x) {
            Some(v) => v,
            None => return Self::quantize_scalar(x, y),
        };
        let d = max / -16.0;
        let id = match finite_inverse(d) {
            Some(v) => v,
            None => return Self::quantize_scalar(x, y),
        };
        y.d = Half::from_f32(d);
        let (idv, half) = (f32x4_splat(id), f32x4_splat(16.5));
        store_fives(&mut y.qh, &mut y.qs, &b.v.map(|v| trunc_small(f32x4_add(f32x4_mul(v, idv), half))));
    }

    fn dequantize_scalar(&self, y: &mut [f32]) {
        let d = self.d.to_f32();
        let qh = u32::from_le_bytes(self.qh);
        for j in 0..16 {
            let (x0, x1) = unpack_five(qh, &self.qs, j);
            y[j] = (x0 - 16) as f32 * d;
            y[j + 16] = (x1 - 16) as f32 * d;
        }
    }

    fn dequantize_simd(&self, y: &mut [f32]) {
        let y = exactly::<QK, _>(y);
        let d = f32x4_splat(self.d.to_f32());
        let qh = u32::from_le_bytes(self.qh);
        for k in 0..4 {
            let q = load_quads(&self.qs, 4 * k);
            let lo = i32x4_sub(v128_or(v128_and(q, i32x4_splat(0xf)), fifth_bits(qh, 4 * k as u32)), i32x4_splat(16));
            let hi = i32x4_sub(v128_or(u32x4_shr(q, 4), fifth_bits(qh, 16 + 4 * k as u32)), i32x4_splat(16));
            store4(y, 4 * k, f32x4_mul(f32x4_convert_i32x4(lo), d));
            store4(y, 16 + 4 * k, f32x4_mul(f32x4_convert_i32x4(hi), d));
        }
    }
}

impl GgmlBlock for BlockQ5_1 {
    const TYPE: u32 = 7;
    const BLCK: usize = QK;

    fn quantize_scalar(x: &[f32], y: &mut Self) {
        let (min, max) = scalar_min_max(&x[..QK]);
        let d = (max - min) / 31.0;
        let id = inverse(d);
        y.d = Half::from_f32(d);
        y.m = Half::from_f32(min);
        let mut q = [0u8; 32];
        for j in 0..QK {
            q[j] = cvtt((x[j] - min) * id + 0.5) as u8;
        }
        pack_fives(&q, &mut y.qh, &mut y.qs);
    }

    fn quantize_simd(x: &[f32], y: &mut Self) {
        let b = Lanes32::load(x);
        let (min, max) = match b.finite_min_max(x) {
            Some(v) => v,
            None => return Self::quantize_scalar(x, y),
        };
        let d = (max - min) / 31.0;
        let id = match finite_inverse(d) {
            Some(v) => v,
            None => return Self::quantize_scalar(x, y),
        };
        y.d = Half::from_f32(d);
        y.m = Half::from_f32(min);
        // ggml has no clamp here; in range (x - min) * id + 0.5 < 32 anyway.
        let (idv, minv, half) = (f32x4_splat(id), f32x4_splat(min), f32x4_splat(0.5));
        store_fives(&mut y.qh, &mut y.qs, &b.v.map(|v| trunc_small(f32x4_add(f32x4_mul(f32x4_sub(v, minv), idv), half))));
    }

    fn dequantize_scalar(&self, y: &mut [f32]) {
        let (d, m) = (self.d.to_f32(), self.m.to_f32());
        let qh = u32::from_le_bytes(self.qh);
        for j in 0..16 {
            let (x0, x1) = unpack_five(qh, &self.qs, j);
            y[j] = add_nan_first(x0 as f32 * d, m);
            y[j + 16] = add_nan_first(x1 as f32 * d, m);
        }
    }

    fn dequantize_simd(&self, y: &mut [f32]) {
        let y = exactly::<QK, _>(y);
        let d = f32x4_splat(self.d.to_f32());
        let m = f32x4_splat(self.m.to_f32());
        let qh = u32::from_le_bytes(self.qh);
        for k in 0..4 {
            let q = load_quads(&self.qs, 4 * k);
            let lo = v128_or(v128_and(q, i32x4_splat(0xf)), fifth_bits(qh, 4 * k as u32));
            let hi = v128_or(u32x4_shr(q, 4), fifth_bits(qh, 16 + 4 * k as u32));
            store4(y, 4 * k, mul_add_nan_first(f32x4_convert_i32x4(lo), d, m));
            store4(y, 16 + 4 * k, mul_add_nan_first(f32x4_convert_i32x4(hi), d, m));
        }
    }
}
