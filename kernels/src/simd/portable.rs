//! Plain-Rust stand-ins for the wasm32 SIMD128 intrinsics the kernels use, lane for lane.
//!
//! Each function follows the WebAssembly definition of the instruction (wrapping integer
//! arithmetic, shift counts taken modulo the lane width, saturating narrows, pmin/pmax as
//! the selects they are defined as). Float arithmetic follows x86 SSE, which is what V8
//! runs wasm SIMD on and what ggml's reference runs on: a NaN result carries the first NaN
//! operand (quieted), and an invalid operation gives the "indefinite" NaN 0xffc00000. This
//! is spelled out rather than left to the host compiler, which may swap the operands of a
//! commutative operation.

#![allow(non_camel_case_types)]

use super::soft_float::{nan_rule, sqrt, trunc};

/// 128 bits as four little-endian 32-bit lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct v128([u32; 4]);

impl v128 {
    fn f(self) -> [f32; 4] {
        self.0.map(f32::from_bits)
    }
    fn from_f(x: [f32; 4]) -> v128 {
        v128(x.map(f32::to_bits))
    }
    fn i(self) -> [i32; 4] {
        self.0.map(|w| w as i32)
    }
    fn from_i(x: [i32; 4]) -> v128 {
        v128(x.map(|w| w as u32))
    }
    fn bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (k, w) in self.0.iter().enumerate() {
            out[4 * k..4 * k + 4].copy_from_slice(&w.to_le_bytes());
        }
        out
    }
    fn from_bytes(b: [u8; 16]) -> v128 {
        v128([0, 1, 2, 3].map(|k| u32::from_le_bytes([b[4 * k], b[4 * k + 1], b[4 * k + 2], b[4 * k + 3]])))
    }
    fn halves(self) -> [u16; 8] {
        let b = self.bytes();
        [0, 1, 2, 3, 4, 5, 6, 7].map(|k| u16::from_le_bytes([b[2 * k], b[2 * k + 1]]))
    }
    fn from_halves(h: [u16; 8]) -> v128 {
        let mut b = [0u8; 16];
        for (k, v) in h.iter().enumerate() {
            b[2 * k..2 * k + 2].copy_from_slice(&v.to_le_bytes());
        }
        v128::from_bytes(b)
    }
}

fn zip<T: Copy, U>(a: [T; 4], b: [T; 4], op: impl Fn(T, T) -> U) -> [U; 4] {
    [op(a[0], b[0]), op(a[1], b[1]), op(a[2], b[2]), op(a[3], b[3])]
}

fn mask(c: bool) -> u32 {
    if c {
        u32::MAX
    } else {
        0
    }
}

fn float_op(a: v128, b: v128, op: impl Fn(f32, f32) -> f32) -> v128 {
    v128::from_f(zip(a.f(), b.f(), |x, y| nan_rule(x, y, op(x, y))))
}

fn float_cmp(a: v128, b: v128, op: impl Fn(f32, f32) -> bool) -> v128 {
    v128(zip(a.f(), b.f(), |x, y| mask(op(x, y))))
}

fn int_op(a: v128, b: v128, op: impl Fn(i32, i32) -> i32) -> v128 {
    v128::from_i(zip(a.i(), b.i(), op))
}

fn int_cmp(a: v128, b: v128, op: impl Fn(i32, i32) -> bool) -> v128 {
    v128(zip(a.i(), b.i(), |x, y| mask(op(x, y))))
}

fn uint_op(a: v128, b: v128, op: impl Fn(u32, u32) -> u32) -> v128 {
    v128(zip(a.0, b.0, op))
}

// ---------------------------------------------------------------------------------------
// Construction, lanes, memory.

pub const fn f32x4(a: f32, b: f32, c: f32, d: f32) -> v128 {
    // SAFETY: f32 and u32 have the same size; every bit pattern is a valid u32.
    unsafe { v128(core::mem::transmute::<[f32; 4], [u32; 4]>([a, b, c, d])) }
}

pub const fn u32x4(a: u32, b: u32, c: u32, d: u32) -> v128 {
    v128([a, b, c, d])
}

pub fn f32x4_splat(a: f32) -> v128 {
    v128([a.to_bits(); 4])
}

pub fn i32x4_splat(a: i32) -> v128 {
    v128([a as u32; 4])
}

pub fn u32x4_splat(a: u32) -> v128 {
    v128([a; 4])
}

pub fn i16x8_splat(a: i16) -> v128 {
    v128::from_halves([a as u16; 8])
}

pub fn u8x16_splat(a: u8) -> v128 {
    v128::from_bytes([a; 16])
}

pub fn f32x4_extract_lane<const N: usize>(a: v128) -> f32 {
    f32::from_bits(a.0[N])
}

pub fn i32x4_extract_lane<const N: usize>(a: v128) -> i32 {
    a.0[N] as i32
}

pub fn i32x4_shuffle<const I0: usize, const I1: usize, const I2: usize, const I3: usize>(a: v128, b: v128) -> v128 {
    let pick = |i: usize| if i < 4 { a.0[i] } else { b.0[i - 4] };
    v128([pick(I0), pick(I1), pick(I2), pick(I3)])
}

/// # Safety
/// `m` must be valid for reading 16 bytes (any alignment).
pub unsafe fn v128_load(m: *const v128) -> v128 {
    v128::from_bytes(core::ptr::read_unaligned(m as *const [u8; 16]))
}

/// # Safety
/// `m` must be valid for writing 16 bytes (any alignment).
pub unsafe fn v128_store(m: *mut v128, a: v128) {
    core::ptr::write_unaligned(m as *mut [u8; 16], a.bytes())
}

// ---------------------------------------------------------------------------------------
// Bitwise.

pub fn v128_and(a: v128, b: v128) -> v128 {
    uint_op(a, b, |x, y| x & y)
}

pub fn v128_or(a: v128, b: v128) -> v128 {
    uint_op(a, b, |x, y| x | y)
}

pub fn v128_not(a: v128) -> v128 {
    v128(a.0.map(|x| !x))
}

pub fn v128_bitselect(a: v128, b: v128, c: v128) -> v128 {
    v128([0, 1, 2, 3].map(|k| (a.0[k] & c.0[k]) | (b.0[k] & !c.0[k])))
}

pub fn v128_any_true(a: v128) -> bool {
    a.0.iter().any(|w| *w != 0)
}

// ---------------------------------------------------------------------------------------
// f32 lanes.

pub fn f32x4_add(a: v128, b: v128) -> v128 {
    float_op(a, b, |x, y| x + y)
}

pub fn f32x4_sub(a: v128, b: v128) -> v128 {
    float_op(a, b, |x, y| x - y)
}

pub fn f32x4_mul(a: v128, b: v128) -> v128 {
    float_op(a, b, |x, y| x * y)
}

pub fn f32x4_div(a: v128, b: v128) -> v128 {
    float_op(a, b, |x, y| x / y)
}

pub fn f32x4_abs(a: v128) -> v128 {
    v128(a.0.map(|w| w & 0x7fff_ffff))
}

pub fn f32x4_neg(a: v128) -> v128 {
    v128(a.0.map(|w| w ^ 0x8000_0000))
}

pub fn f32x4_pmin(a: v128, b: v128) -> v128 {
    v128::from_f(zip(a.f(), b.f(), |x, y| if y < x { y } else { x }))
}

pub fn f32x4_pmax(a: v128, b: v128) -> v128 {
    v128::from_f(zip(a.f(), b.f(), |x, y| if x < y { y } else { x }))
}

pub fn f32x4_eq(a: v128, b: v128) -> v128 {
    float_cmp(a, b, |x, y| x == y)
}

pub fn f32x4_ne(a: v128, b: v128) -> v128 {
    float_cmp(a, b, |x, y| x != y)
}

pub fn f32x4_lt(a: v128, b: v128) -> v128 {
    float_cmp(a, b, |x, y| x < y)
}

pub fn f32x4_gt(a: v128, b: v128) -> v128 {
    float_cmp(a, b, |x, y| x > y)
}

pub fn f32x4_ge(a: v128, b: v128) -> v128 {
    float_cmp(a, b, |x, y| x >= y)
}

pub fn f32x4_convert_i32x4(a: v128) -> v128 {
    v128::from_f(a.i().map(|x| x as f32))
}

/// Rust's `as` saturates and maps NaN to 0, which is exactly i32x4.trunc_sat_f32x4_s.
pub fn i32x4_trunc_sat_f32x4(a: v128) -> v128 {
    v128::from_i(a.f().map(|x| x as i32))
}

pub fn f32x4_trunc(a: v128) -> v128 {
    v128::from_f(a.f().map(trunc))
}

pub fn f32x4_sqrt(a: v128) -> v128 {
    v128::from_f(a.f().map(sqrt))
}

// ---------------------------------------------------------------------------------------
// Integer lanes.

pub fn i32x4_add(a: v128, b: v128) -> v128 {
    int_op(a, b, i32::wrapping_add)
}

pub fn i32x4_sub(a: v128, b: v128) -> v128 {
    int_op(a, b, i32::wrapping_sub)
}

pub fn i32x4_mul(a: v128, b: v128) -> v128 {
    int_op(a, b, i32::wrapping_mul)
}

pub fn i32x4_max(a: v128, b: v128) -> v128 {
    int_op(a, b, |x, y| if x > y { x } else { y })
}

pub fn i32x4_min(a: v128, b: v128) -> v128 {
    int_op(a, b, |x, y| if x < y { x } else { y })
}

pub fn i32x4_eq(a: v128, b: v128) -> v128 {
    int_cmp(a, b, |x, y| x == y)
}

pub fn i32x4_ne(a: v128, b: v128) -> v128 {
    int_cmp(a, b, |x, y| x != y)
}

pub fn i32x4_gt(a: v128, b: v128) -> v128 {
    int_cmp(a, b, |x, y| x > y)
}

pub fn u32x4_max(a: v128, b: v128) -> v128 {
    uint_op(a, b, |x, y| if x > y { x } else { y })
}

pub fn u32x4_lt(a: v128, b: v128) -> v128 {
    v128(zip(a.0, b.0, |x, y| mask(x < y)))
}

pub fn u32x4_gt(a: v128, b: v128) -> v128 {
    v128(zip(a.0, b.0, |x, y| mask(x > y)))
}

pub fn i32x4_shl(a: v128, amt: u32) -> v128 {
    v128(a.0.map(|w| w << (amt & 31)))
}

pub fn i32x4_shr(a: v128, amt: u32) -> v128 {
    v128::from_i(a.i().map(|w| w >> (amt & 31)))
}

pub fn u32x4_shr(a: v128, amt: u32) -> v128 {
    v128(a.0.map(|w| w >> (amt & 31)))
}

pub fn i32x4_bitmask(a: v128) -> u8 {
    a.0.iter().enumerate().fold(0, |m, (k, w)| m | (((w >> 31) as u8) << k))
}

pub fn i8x16_bitmask(a: v128) -> u16 {
    a.bytes().iter().enumerate().fold(0, |m, (k, b)| m | (((b >> 7) as u16) << k))
}

pub fn i8x16_shl(a: v128, amt: u32) -> v128 {
    v128::from_bytes(a.bytes().map(|b| b << (amt & 7)))
}

pub fn u8x16_min(a: v128, b: v128) -> v128 {
    let (x, y) = (a.bytes(), b.bytes());
    v128::from_bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15].map(|k| x[k].min(y[k])))
}

// ---------------------------------------------------------------------------------------
// Narrowing (signed inputs, saturating) and widening (zero-extending).

fn narrow32(a: v128, b: v128, lo: i32, hi: i32) -> [u16; 8] {
    let (x, y) = (a.i(), b.i());
    [0, 1, 2, 3, 4, 5, 6, 7].map(|k| (if k < 4 { x[k] } else { y[k - 4] }).max(lo).min(hi) as u16)
}

fn narrow16(a: v128, b: v128, lo: i16, hi: i16) -> [u8; 16] {
    let (x, y) = (a.halves(), b.halves());
    let mut out = [0u8; 16];
    for k in 0..16 {
        let v = (if k < 8 { x[k] } else { y[k - 8] }) as i16;
        out[k] = v.max(lo).min(hi) as u8;
    }
    out
}

pub fn i16x8_narrow_i32x4(a: v128, b: v128) -> v128 {
    v128::from_halves(narrow32(a, b, i16::MIN as i32, i16::MAX as i32))
}

pub fn u16x8_narrow_i32x4(a: v128, b: v128) -> v128 {
    v128::from_halves(narrow32(a, b, 0, u16::MAX as i32))
}

pub fn i8x16_narrow_i16x8(a: v128, b: v128) -> v128 {
    v128::from_bytes(narrow16(a, b, i8::MIN as i16, i8::MAX as i16))
}

pub fn u8x16_narrow_i16x8(a: v128, b: v128) -> v128 {
    v128::from_bytes(narrow16(a, b, 0, u8::MAX as i16))
}

pub fn u16x8_extend_low_u8x16(a: v128) -> v128 {
    let b = a.bytes();
    v128::from_halves([0, 1, 2, 3, 4, 5, 6, 7].map(|k| b[k] as u16))
}

pub fn u32x4_extend_low_u16x8(a: v128) -> v128 {
    let h = a.halves();
    v128([h[0] as u32, h[1] as u32, h[2] as u32, h[3] as u32])
}

pub fn u32x4_extend_high_u16x8(a: v128) -> v128 {
    let h = a.halves();
    v128([h[4] as u32, h[5] as u32, h[6] as u32, h[7] as u32])
}

#[cfg(test)]
#[path = "portable_tests.rs"]
mod tests;
