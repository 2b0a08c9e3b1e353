//! Q4_0 (d = max / -8, q = min(15, (int8)(x/d + 8.5))) and Q4_1 (d = (max - min) / 15,
//! q = min(15, (int8)((x - min)/d + 0.5))).

use super::*;
use crate::blocks::{BlockQ4_0, BlockQ4_1, GgmlBlock, Half};

impl GgmlBlock for BlockQ4_0 {
    const TYPE: u32 = 2;
    const BLCK: usize = QK;

    fn quantize_scalar(x: &[f32], y: &mut Self) {
        let max = scalar_signed_absmax(&x[..QK]);
        let d = max / -8.0;
        let id = inverse(d);
        y.d = Half::from_f32(d);
        for j in 0..16 {
            let xi0 = to_i8(x[j] * id + 8.5).min(15) as u8;
            let xi1 = to_i8(x[j + 16] * id + 8.5).min(15) as u8;
            y.qs[j] = xi0 | (xi1 << 4);
        }
    }

    fn quantize_simd(x: &[f32], y: &mut Self) {
        let b = Lanes32::load(x);
        let max = match b.finite_signed_absmax(x) {
            Some(v) => v,
            None => return Self::quantize_scalar(x, y),
        };
        let d = max / -8.0;
        let id = match finite_inverse(d) {
            Some(v) => v,
            None => return Self::quantize_scalar(x, y),
        };
        y.d = Half::from_f32(d);
        // |x * id| <= 8 (plus rounding), so x*id + 8.5 lies in [0, 17): plain truncation is exact.
        let (idv, half) = (f32x4_splat(id), f32x4_splat(8.5));
        store_nibbles(&mut y.qs, &b.v.map(|v| trunc_small(f32x4_add(f32x4_mul(v, idv), half))));
    }

    fn dequantize_scalar(&self, y: &mut [f32]) {
        let d = self.d.to_f32();
        for j in 0..16 {
            let x0 = (self.qs[j] & 0x0f) as i32 - 8;
            let x1 = (self.qs[j] >> 4) as i32 - 8;
            y[j] = x0 as f32 * d;
            y[j + 16] = x1 as f32 * d;
        }
    }

    fn dequantize_simd(&self, y: &mut [f32]) {
        let y = exactly::<QK, _>(y);
        let d = f32x4_splat(self.d.to_f32());
        for k in 0..4 {
            let q = load_quads(&self.qs, 4 * k);
            let lo = i32x4_sub(v128_and(q, i32x4_splat(0xf)), i32x4_splat(8));
            let hi = i32x4_sub(u32x4_shr(q, 4), i32x4_splat(8));
            store4(y, 4 * k, f32x4_mul(f32x4_convert_i32x4(lo), d));
            store4(y, 16 + 4 * k, f32x4_mul(f32x4_convert_i32x4(hi), d));
        }
    }
}

impl GgmlBlock for BlockQ4_1 {
    const TYPE: u32 = 3;
    const BLCK: usize = QK;

    fn quantize_scalar(x: &[f32], y: &mut Self) {
        let (min, max) = scalar_min_max(&x[..QK]);
        let d = (max - min) / 15.0;
        let id = inverse(d);
        y.d = Half::from_f32(d);
        y.m = Half::from_f32(min);
        for j in 0..16 {
            let xi0 = to_i8((x[j] - min) * id + 0.5).min(15) as u8;
            let xi1 = to_i8((x[j + 16] - min) * id + 0.5).min(15) as u8;
            y.qs[j] = xi0 | (xi1 << 4);
        }
    }

    fn quantize_simd(x: &[f32], y: &mut Self) {
        let b = Lanes32::load(x);
        let (min, max) = match b.finite_min_max(x) {
            Some(v) => v,
            None => return Self::quantize_scalar(x, y),
        };
        let d = (max - min) / 15.0;
        let id = match finite_inverse(d) {
            Some(v) => v,
            None => return Self::quantize_scalar(x, y),
        };
        y.d = Half::from_f32(d);
        y.m = Half::from_f32(min);
        // 0 <= (x - min) * id <= 15 (plus rounding): plain truncation is exact.
        let (idv, minv, half) = (f32x4_splat(id), f32x4_splat(min), f32x4_splat(0.5));
        store_nibbles(&mut y.qs, &b.v.map(|v| trunc_small(f32x4_add(f32x4_mul(f32x4_sub(v, minv), idv), half))));
    }

    fn dequantize_scalar(&self, y: &mut [f32]) {
        let (d, m) = (self.d.to_f32(), self.m.to_f32());
        for j in 0..16 {
            let x0 = (self.qs[j] & 0x0f) as i32;
            let x1 = (self.qs[j] >> 4) as i32;
            y[j] = add_nan_first(x0 as f32 * d, m);
            y[j + 16] = add_nan_first(x1 as f32 * d, m);
        }
    }

    fn dequantize_simd(&self, y: &mut [f32]) {
        let y = exactly::<QK, _>(y);
        let d = f32x4_splat(self.d.to_f32());
        let m = f32x4_splat(self.m.to_f32());
        for k in 0..4 {
            let q = load_quads(&self.qs, 4 * k);
            let lo = v128_and(q, i32x4_splat(0xf));
            let hi = u32x4_shr(q, 4);
            store4(y, 4 * k, mul_add_nan_first(f32x4_convert_i32x4(lo), d, m));
            store4(y, 16 + 4 * k, mul_add_nan_first(f32x4_convert_i32x4(hi), d, m));
        }
    }
}
