//! F16 and BF16 as ggml sees them: blocks of one element. The rows are converted eight at a
//! time with ggml's software conversions vectorised lane by lane, the tail one by one.

use crate::blocks::{BlockBF16, BlockF16, GgmlBlock, Half};
use crate::common::*;
use crate::simd::*;

/// Runs `simd` on each run of 8 elements of a row of `n` and `scalar` on the rest.
#[inline(always)]
fn by_eight(n: usize, mut simd: impl FnMut(usize), mut scalar: impl FnMut(usize)) {
    let n8 = n / 8 * 8;
    for i in (0..n8).step_by(8) {
        simd(i);
    }
    for j in n8..n {
        scalar(j);
    }
}

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
        assert!(y.len() >= x.len());
        let (src, dst) = (x.as_ptr(), y.as_mut_ptr() as *mut u8);
        by_eight(
            x.len(),
            // SAFETY: i + 8 <= x.len() <= y.len(); v128 loads and stores need no alignment.
            |i| unsafe {
                let a = fp32_to_fp16x4(load(src.add(i)));
                let b = fp32_to_fp16x4(load(src.add(i + 4)));
                v128_store(dst.add(2 * i) as *mut v128, u16x8_narrow_i32x4(a, b));
            },
            |j| Self::quantize_scalar(&x[j..], &mut y[j]),
        );
    }

    fn dequantize_row_simd(x: &[Self], y: &mut [f32]) {
        assert!(y.len() >= x.len());
        let (src, dst) = (x.as_ptr() as *const u8, y.as_mut_ptr());
        by_eight(
            x.len(),
            // SAFETY: as in quantize_row_simd.
            |i| unsafe {
                let h = v128_load(src.add(2 * i) as *const v128);
                store(dst.add(i), fp16_to_fp32x4(u32x4_extend_low_u16x8(h)));
                store(dst.add(i + 4), fp16_to_fp32x4(u32x4_extend_high_u16x8(h)));
            },
            |j| x[j].dequantize_scalar(&mut y[j..]),
        );
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
        assert!(y.len() >= x.len());
        let (src, dst) = (x.as_ptr(), y.as_mut_ptr() as *mut u8);
        by_eight(
            x.len(),
            // SAFETY: i + 8 <= x.len() <= y.len(); v128 loads and stores need no alignment.
            |i| unsafe {
                let a = fp32_to_bf16x4(load(src.add(i)));
                let b = fp32_to_bf16x4(load(src.add(i + 4)));
                v128_store(dst.add(2 * i) as *mut v128, u16x8_narrow_i32x4(a, b));
            },
            |j| Self::quantize_scalar(&x[j..], &mut y[j]),
        );
    }

    fn dequantize_row_simd(x: &[Self], y: &mut [f32]) {
        assert!(y.len() >= x.len());
        let (src, dst) = (x.as_ptr() as *const u8, y.as_mut_ptr());
        by_eight(
            x.len(),
            // SAFETY: as in quantize_row_simd.
            |i| unsafe {
                let h = v128_load(src.add(2 * i) as *const v128);
                store(dst.add(i), i32x4_shl(u32x4_extend_low_u16x8(h), 16));
                store(dst.add(i + 4), i32x4_shl(u32x4_extend_high_u16x8(h), 16));
            },
            |j| x[j].dequantize_scalar(&mut y[j..]),
        );
    }
}
