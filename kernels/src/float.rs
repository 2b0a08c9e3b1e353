//! F32 -> F16 / BF16 rows (and back), with ggml's software conversions vectorised lane by lane.

use crate::common::*;
use crate::simd::*;

pub fn f32_to_f16(x: &[f32], y: &mut [u16]) {
    let n8 = x.len() / 8 * 8;
    for i in (0..n8).step_by(8) {
        unsafe {
            let a = fp32_to_fp16x4(load(x.as_ptr().add(i)));
            let b = fp32_to_fp16x4(load(x.as_ptr().add(i + 4)));
            v128_store(y.as_mut_ptr().add(i) as *mut v128, u16x8_narrow_i32x4(a, b));
        }
    }
    for j in n8..x.len() {
        y[j] = fp32_to_fp16(x[j]);
    }
}

pub fn f32_to_bf16(x: &[f32], y: &mut [u16]) {
    let n8 = x.len() / 8 * 8;
    for i in (0..n8).step_by(8) {
        unsafe {
            let a = fp32_to_bf16x4(load(x.as_ptr().add(i)));
            let b = fp32_to_bf16x4(load(x.as_ptr().add(i + 4)));
            v128_store(y.as_mut_ptr().add(i) as *mut v128, u16x8_narrow_i32x4(a, b));
        }
    }
    for j in n8..x.len() {
        y[j] = fp32_to_bf16(x[j]);
    }
}

pub fn f16_to_f32(x: &[u16], y: &mut [f32]) {
    let n8 = x.len() / 8 * 8;
    for i in (0..n8).step_by(8) {
        unsafe {
            let h = v128_load(x.as_ptr().add(i) as *const v128);
            store(y.as_mut_ptr().add(i), fp16_to_fp32x4(u32x4_extend_low_u16x8(h)));
            store(y.as_mut_ptr().add(i + 4), fp16_to_fp32x4(u32x4_extend_high_u16x8(h)));
        }
    }
    for j in n8..x.len() {
        y[j] = fp16_to_fp32(x[j]);
    }
}

pub fn bf16_to_f32(x: &[u16], y: &mut [f32]) {
    let n8 = x.len() / 8 * 8;
    for i in (0..n8).step_by(8) {
        unsafe {
            let h = v128_load(x.as_ptr().add(i) as *const v128);
            store(y.as_mut_ptr().add(i), i32x4_shl(u32x4_extend_low_u16x8(h), 16));
            store(y.as_mut_ptr().add(i + 4), i32x4_shl(u32x4_extend_high_u16x8(h), 16));
        }
    }
    for j in n8..x.len() {
        y[j] = f32::from_bits((x[j] as u32) << 16);
    }
}
