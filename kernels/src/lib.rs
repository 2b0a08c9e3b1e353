//! edgequant's block quantization kernels: ggml's reference quantizers (the path
//! `ggml_quantize_chunk` takes without an importance matrix) and dequantizers, byte for byte,
//! compiled to WebAssembly with SIMD128.
//!
//! The module has no allocator: the host grows the exported memory and places its buffers
//! above `eq_heap_base()`. Kernels keep their scratch on the stack.

// The host build exists for `cargo test`, which needs std for its harness.
#![cfg_attr(not(test), no_std)]

mod common;
mod float;
mod kquants;
mod legacy;
mod simd;
mod ternary;

use core::slice;

#[cfg(all(target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(target_arch = "wasm32")]
extern "C" {
    static __heap_base: u8;
}

/// First byte of linear memory the host may use for buffers.
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub extern "C" fn eq_heap_base() -> usize {
    unsafe { &__heap_base as *const u8 as usize }
}

type Quantize = fn(&[f32], &mut [u8]);
type Dequantize = fn(&[u8], &mut [f32]);

/// (elements per block, bytes per block, quantizer, dequantizer) by ggml type id.
fn kernel(ty: u32) -> Option<(usize, usize, Quantize, Dequantize)> {
    use kquants::*;
    use legacy::*;
    use ternary::*;
    Some(match ty {
        2 => (32, Q4_0_BYTES, quantize_q4_0, dequantize_q4_0),
        3 => (32, Q4_1_BYTES, quantize_q4_1, dequantize_q4_1),
        6 => (32, Q5_0_BYTES, quantize_q5_0, dequantize_q5_0),
        7 => (32, Q5_1_BYTES, quantize_q5_1, dequantize_q5_1),
        8 => (32, Q8_0_BYTES, quantize_q8_0, dequantize_q8_0),
        10 => (256, Q2_K_BYTES, quantize_q2_k, dequantize_q2_k),
        11 => (256, Q3_K_BYTES, quantize_q3_k, dequantize_q3_k),
        12 => (256, Q4_K_BYTES, quantize_q4_k, dequantize_q4_k),
        13 => (256, Q5_K_BYTES, quantize_q5_k, dequantize_q5_k),
        14 => (256, Q6_K_BYTES, quantize_q6_k, dequantize_q6_k),
        34 => (256, TQ1_0_BYTES, quantize_tq1_0, dequantize_tq1_0),
        35 => (256, TQ2_0_BYTES, quantize_tq2_0, dequantize_tq2_0),
        _ => return None,
    })
}

const F16: u32 = 1;
const BF16: u32 = 30;

/// Quantizes `n` floats at `src` into type `ty` at `dst`. Returns the bytes written, or
/// usize::MAX for an unknown type or an `n` that is not a whole number of blocks.
#[no_mangle]
pub unsafe extern "C" fn eq_quantize(ty: u32, src: *const f32, dst: *mut u8, n: usize) -> usize {
    let x = slice::from_raw_parts(src, n);
    match ty {
        F16 | BF16 => {
            let y = slice::from_raw_parts_mut(dst as *mut u16, n);
            if ty == F16 { float::f32_to_f16(x, y) } else { float::f32_to_bf16(x, y) }
            2 * n
        }
        _ => match kernel(ty) {
            Some((block, bytes, quantize, _)) if n % block == 0 => {
                let out = n / block * bytes;
                quantize(x, slice::from_raw_parts_mut(dst, out));
                out
            }
            _ => usize::MAX,
        },
    }
}

/// Dequantizes `n` elements of type `ty` at `src` into floats at `dst`. Returns the bytes
/// read, or usize::MAX for an unknown type or a partial block.
#[no_mangle]
pub unsafe extern "C" fn eq_dequantize(ty: u32, src: *const u8, dst: *mut f32, n: usize) -> usize {
    let y = slice::from_raw_parts_mut(dst, n);
    match ty {
        F16 | BF16 => {
            let x = slice::from_raw_parts(src as *const u16, n);
            if ty == F16 { float::f16_to_f32(x, y) } else { float::bf16_to_f32(x, y) }
            2 * n
        }
        _ => match kernel(ty) {
            Some((block, bytes, _, dequantize)) if n % block == 0 => {
                let inp = n / block * bytes;
                dequantize(slice::from_raw_parts(src, inp), y);
                inp
            }
            _ => usize::MAX,
        },
    }
}
