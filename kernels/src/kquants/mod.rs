//! Q2_K, Q3_K, Q4_K, Q5_K and Q6_K: super-blocks of 256 with quantized sub-block scales.
//!
//! The expensive part, ggml's per-sub-block scale search (make_qkx2_quants, make_qx_quants,
//! make_q3_quants), runs on four sub-blocks at once (`search`): lane k of every vector
//! belongs to sub-block k, so each lane performs exactly the scalar sequence of float
//! operations, sums in the same order, and takes the same data-dependent branches (as lane
//! masks). The rest (scale quantization, re-quantizing with the rounded scales, bit packing)
//! is per element or per scale and is done plainly or across consecutive elements.
//!
//! Each type's scalar twin is ggml's C reference transcribed loop for loop, with the scale
//! searches in `search_scalar`; `cargo test` holds the SIMD form to it byte for byte.

mod q2_k;
mod q3_k;
mod q45_k;
mod q6_k;
mod search;
mod search_scalar;

use crate::common::*;
use crate::simd::*;

const ZERO: v128 = f32x4(0.0, 0.0, 0.0, 0.0);

/// Lane form of one group of four sub-blocks of up to 32 elements.
struct Group {
    x: [v128; 32],
    w: [v128; 32],
    l: [v128; 32],
}

impl Group {
    fn new() -> Group {
        Group { x: [ZERO; 32], w: [ZERO; 32], l: [ZERO; 32] }
    }
}

/// Re-quantizes `x` with the rounded scale: clamp(nearest_int((x [+ dm]) / d)) + offset.
/// Q3_K/Q6_K divide x itself (`dm` = None); adding 0 would turn -0 into +0 and NaN payloads
/// matter to nearest_int, so the two forms are kept apart.
#[inline(always)]
fn requantize(x: &[f32], d: f32, dm: Option<f32>, lo: i32, hi: i32, offset: i32, out: &mut [i32]) {
    assert!(out.len() >= x.len() && x.len() % 4 == 0);
    let dv = f32x4_splat(d);
    for i in (0..x.len()).step_by(4) {
        // SAFETY: i + 4 <= x.len() <= out.len() (asserted).
        unsafe {
            let num = match dm {
                Some(dm) => f32x4_add(load(x.as_ptr().add(i)), f32x4_splat(dm)),
                None => load(x.as_ptr().add(i)),
            };
            let l = i32x4_add(clamp4(nearest_int4(f32x4_div(num, dv)), lo, hi), i32x4_splat(offset));
            v128_store(out.as_mut_ptr().add(i) as *mut v128, l);
        }
    }
}

#[inline(always)]
fn load_i32(l: &[i32], at: usize) -> v128 {
    let four = &l[at..at + 4];
    // SAFETY: `four` is four readable i32s; v128 loads need no alignment.
    unsafe { v128_load(four.as_ptr() as *const v128) }
}

#[inline(always)]
fn store_i32(l: &mut [i32], at: usize, v: v128) {
    let four = &mut l[at..at + 4];
    // SAFETY: `four` is four writable i32s.
    unsafe { v128_store(four.as_mut_ptr() as *mut v128, v) }
}

/// Four bytes of `q` from `at`, zero-extended into i32 lanes.
#[inline(always)]
fn load_quads(q: &[u8], at: usize) -> v128 {
    let four = &q[at..at + 4];
    // SAFETY: `four` is four readable bytes.
    unsafe { load_bytes4(four.as_ptr()) }
}

/// Sixteen bytes from four i32x4 vectors holding 0..=255, into `out[at..at + 16]`.
#[inline(always)]
fn put_bytes16(out: &mut [u8], at: usize, v: &[v128]) {
    let sixteen = &mut out[at..at + 16];
    // SAFETY: `sixteen` is 16 writable bytes.
    unsafe { store_bytes16(sixteen.as_mut_ptr(), v[0], v[1], v[2], v[3]) }
}

/// Stores four floats at y[at..at+4].
#[inline(always)]
fn store4(y: &mut [f32], at: usize, v: v128) {
    let four = &mut y[at..at + 4];
    // SAFETY: `four` is four writable floats.
    unsafe { store(four.as_mut_ptr(), v) }
}

/// ggml's 2-bit packing: byte l of each 32-byte run holds L[l], L[l+32], L[l+64], L[l+96].
#[inline(always)]
fn pack_2bit(l: &[i32; QK_K], qs: &mut [u8; QK_K / 4]) {
    for j in (0..QK_K).step_by(128) {
        let mut v = [ZERO; 8];
        for (k, slot) in v.iter_mut().enumerate() {
            let at = j + 4 * k;
            *slot = v128_or(
                v128_or(load_i32(l, at), i32x4_shl(load_i32(l, at + 32), 2)),
                v128_or(i32x4_shl(load_i32(l, at + 64), 4), i32x4_shl(load_i32(l, at + 96), 6)),
            );
            *slot = v128_and(*slot, i32x4_splat(0xff));
        }
        put_bytes16(qs, j / 4, &v[..4]);
        put_bytes16(qs, j / 4 + 16, &v[4..]);
    }
}

/// The same packing as ggml writes it, for the scalar twins.
fn pack_2bit_scalar(l: &[u8; QK_K], qs: &mut [u8; QK_K / 4]) {
    for j in (0..QK_K).step_by(128) {
        for i in 0..32 {
            qs[j / 4 + i] = l[j + i] | (l[j + i + 32] << 2) | (l[j + i + 64] << 4) | (l[j + i + 96] << 6);
        }
    }
}

/// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j (Q4_K, Q5_K).
#[inline(always)]
fn get_scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Running `if (v > best) best = v;` from 0, ggml's max_scale / max_min scans.
#[inline(always)]
fn positive_max(values: &[f32]) -> f32 {
    let mut best = 0.0f32;
    for &v in values {
        if v > best {
            best = v;
        }
    }
    best
}

/// ggml's `if (fabsf(s) > amax) { amax = fabsf(s); max = s; }` scan: (signed max, amax).
#[inline(always)]
fn signed_absmax(values: &[f32]) -> (f32, f32) {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &s in values {
        if fabsf(s) > amax {
            amax = fabsf(s);
            max = s;
        }
    }
    (max, amax)
}
