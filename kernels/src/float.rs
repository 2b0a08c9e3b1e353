//! F16 and BF16 as ggml sees them: blocks of one element. The rows are converted eight at a
//! time with ggml's software conversions vectorised lane by lane, the tail one by one.
//! (chunks_exact loops: V8 ran index-stepped and closure forms of these up to 60% slower.)

use crate::blocks::{BlockBF16, BlockF16, GgmlBlock, Half};
use crate::common::*;
use crate::simd::*;

impl GgmlBlock for BlockF16 {
    const TYPE: u32 = 1;
    const BLCK: usize = 1;

    fn quantize_scalar(x: &[f32], y: &mut Self) {
        y.h = Half::from_f32(x[0]);
    }

    fn quantize_simd(x: &[f32], y: &mut Self) {
        Self::quantize_scalar(x, y); // a lone element has nothing to vectorise
    }

    fn dequantize_scalar(&self, y: &mut [f32]) {
        y[0] = self.h.to_f32();
    }

    fn dequantize_simd(&self, y: &mut [f32]) {
        self.dequantize_scalar(y);
    }

    fn quantize_row_simd(x: &[f32], y: &mut [Self]) {
        let n8 = x.len() / 8 * 8;
        for (x8, y8) in x[..n8].chunks_exact(8).zip(y[..n8].chunks_exact_mut(8)) {
            // SAFETY: x8 is 8 readable floats and y8 16 writable bytes; v128 accesses need no alignment.
            unsafe {
                let a = fp32_to_fp16x4(load(x8.as_ptr()));
                let b = fp32_to_fp16x4(load(x8.as_ptr().add(4)));
                v128_store(y8.as_mut_ptr() as *mut v128, u16x8_narrow_i32x4(a, b));
            }
        }
        for j in n8..x.len() {
            Self::quantize_scalar(&x[j..], &mut y[j]);
        }
    }

    fn dequantize_row_simd(x: &[Self], y: &mut [f32]) {
        let n8 = x.len() / 8 * 8;
        for (x8, y8) in x[..n8].chunks_exact(8).zip(y[..n8].chunks_exact_mut(8)) {
            // SAFETY: x8 is 16 readable bytes and y8 8 writable floats; v128 accesses need no alignment.
            unsafe {
                let h = v128_load(x8.as_ptr() as *const v128);
                store(y8.as_mut_ptr(), fp16_to_fp32x4(u32x4_extend_low_u16x8(h)));
                store(y8.as_mut_ptr().add(4), fp16_to_fp32x4(u32x4_extend_high_u16x8(h)));
            }
        }
        for j in n8..x.len() {
            x[j].dequantize_scalar(&mut y[j..]);
        }
    }
}

impl GgmlBlock for BlockBF16 {
    const TYPE: u32 = 30;
    const BLCK: usize = 1;

    fn quantize_scalar(x: &[f32], y: &mut Self) {
        y.h = fp32_to_bf16(x[0]).to_le_bytes();
    }

    fn quantize_simd(x: &[f32], y: &mut Self) {
        Self::quantize_scalar(x, y);
    }

    fn dequantize_scalar(&self, y: &mut [f32]) {
        y[0] = f32::from_bits((u16::from_le_bytes(self.h) as u32) << 16);
    }

    fn dequantize_simd(&self, y: &mut [f32]) {
        self.dequantize_scalar(y);
    }

    fn quantize_row_simd(x: &[f32], y: &mut [Self]) {
        let n8 = x.len() / 8 * 8;
        for (x8, y8) in x[..n8].chunks_exact(8).zip(y[..n8].chunks_exact_mut(8)) {
            // SAFETY: x8 is 8 readable floats and y8 16 writable bytes; v128 accesses need no alignment.
            unsafe {
                let a = fp32_to_bf16x4(load(x8.as_ptr()));
                let b = fp32_to_bf16x4(load(x8.as_ptr().add(4)));
                v128_store(y8.as_mut_ptr() as *mut v128, u16x8_narrow_i32x4(a, b));
            }
        }
        for j in n8..x.len() {
            Self::quantize_scalar(&x[j..], &mut y[j]);
        }
    }

    fn dequantize_row_simd(x: &[Self], y: &mut [f32]) {
        let n8 = x.len() / 8 * 8;
        for (x8, y8) in x[..n8].chunks_exact(8).zip(y[..n8].chunks_exact_mut(8)) {
            // SAFETY: x8 is 16 readable bytes and y8 8 writable floats; v128 accesses need no alignment.
            unsafe {
                let h = v128_load(x8.as_ptr() as *const v128);
                store(y8.as_mut_ptr(), i32x4_shl(u32x4_extend_low_u16x8(h), 16));
                store(y8.as_mut_ptr().add(4), i32x4_shl(u32x4_extend_high_u16x8(h), 16));
            }
        }
        for j in n8..x.len() {
            x[j].dequantize_scalar(&mut y[j..]);
        }
    }
}
