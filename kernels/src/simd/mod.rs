//! The 128-bit lane operations the SIMD kernels are written in.
//!
//! On wasm32 these are `core::arch::wasm32`'s SIMD128 intrinsics, so the module compiles to
//! the same instructions as before. Everywhere else they come from `portable`, plain Rust
//! with the same names, signatures and lane semantics (including x86's NaN rules, which is
//! what V8 runs wasm SIMD on), so `cargo test` on the host executes the very same
//! SIMD-structured kernel code and can compare it with the scalar twins.
//!
//! The list below is the whole vocabulary: a kernel that uses an intrinsic not named here
//! fails to build on the host, which keeps the two sides in step.

#[cfg(not(target_arch = "wasm32"))]
mod portable;
#[cfg(not(target_arch = "wasm32"))]
mod soft_float;

#[cfg(not(target_arch = "wasm32"))]
use portable as imp;

#[cfg(target_arch = "wasm32")]
use core::arch::wasm32 as imp;

pub use imp::{
    f32x4, f32x4_abs, f32x4_add, f32x4_convert_i32x4, f32x4_div, f32x4_eq, f32x4_extract_lane, f32x4_ge, f32x4_gt, f32x4_lt,
    f32x4_mul, f32x4_ne, f32x4_neg, f32x4_pmax, f32x4_pmin, f32x4_splat, f32x4_sqrt, f32x4_sub, f32x4_trunc, i16x8_narrow_i32x4,
    i16x8_splat, i32x4_add, i32x4_bitmask, i32x4_eq, i32x4_extract_lane, i32x4_gt, i32x4_max, i32x4_min, i32x4_mul, i32x4_ne,
    i32x4_shl, i32x4_shr, i32x4_shuffle, i32x4_splat, i32x4_sub, i32x4_trunc_sat_f32x4, i8x16_bitmask, i8x16_narrow_i16x8,
    i8x16_shl, u16x8_extend_low_u8x16, u16x8_narrow_i32x4, u32x4, u32x4_extend_high_u16x8, u32x4_extend_low_u16x8, u32x4_gt,
    u32x4_lt, u32x4_max, u32x4_shr, u32x4_splat, u8x16_min, u8x16_narrow_i16x8, u8x16_splat, v128, v128_and, v128_any_true,
    v128_bitselect, v128_load, v128_not, v128_or, v128_store,
};
