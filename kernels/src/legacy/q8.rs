//! Q8_0: d = amax / 127, q = (int8)roundf(x/d).

use super::*;
use crate::blocks::{BlockQ8_0, GgmlBlock, Half};

impl GgmlBlock for BlockQ8_0 {
    const TYPE: u32 = 8;
    const BLCK: usize = QK;

    fn quantize_scalar(x: &[f32], y: &mut Self) {
        let mut amax = 0.0f32;
        for &v in &x[..QK] {
            let a = fabsf(v);
            amax = if amax > a { amax } else { a }; // ggml's MAX macro: a NaN restarts the scan
        }
        let d = amax / 127.0;
        let id = inverse(d);
        y.d = Half::from_f32(d);
        for j in 0..QK {
            y.qs[j] = cvtt(roundf(x[j] * id)) as u8;
        }
    }

    fn quantize_simd(x: &[f32], y: &mut Self) {
        let b = Lanes32::load(x);
        let amax = match b.finite_amax() {
            Some(v) => v,
            None => return Self::quantize_scalar(x, y),
        };
        let d = amax / 127.0;
        let id = match finite_inverse(d) {
            Some(v) => v,
            None => return Self::quantize_scalar(x, y),
        };
        y.d = Half::from_f32(d);
        // |x * id| <= 127 (plus rounding): roundf, then the integer out of the mantissa.
        let idv = f32x4_splat(id);
        let q = b.v.map(|v| i32x4_sub(f32x4_add(roundf4(f32x4_mul(v, idv)), f32x4_splat(12582912.0)), i32x4_splat(0x4b40_0000)));
        let bytes = |a: v128, b: v128, c: v128, d: v128| i8x16_narrow_i16x8(i16x8_narrow_i32x4(a, b), i16x8_narrow_i32x4(c, d));
        // SAFETY: qs is 32 writable bytes; v128 stores need no alignment.
        unsafe {
            v128_store(y.qs.as_mut_ptr() as *mut v128, bytes(q[0], q[1], q[2], q[3]));
            v128_store(y.qs.as_mut_ptr().add(16) as *mut v128, bytes(q[4], q[5], q[6], q[7]));
        }
    }

    fn dequantize_scalar(&self, y: &mut [f32]) {
        let d = self.d.to_f32();
        for j in 0..QK {
            y[j] = (self.qs[j] as i8) as f32 * d;
        }
    }

    fn dequantize_simd(&self, y: &mut [f32]) {
        let y = exactly::<QK, _>(y);
        let d = f32x4_splat(self.d.to_f32());
        for k in 0..8 {
            let q = load_quads(&self.qs, 4 * k);
            let q = i32x4_shr(i32x4_shl(q, 24), 24); // int8
            store4(y, 4 * k, f32x4_mul(f32x4_convert_i32x4(q), d));
        }
    }
}
