//! edgequant's block quantization kernels: ggml's reference quantizers (the path
//! `ggml_quantize_chunk` takes without an importance matrix) and dequantizers, byte for byte,
//! compiled to WebAssembly with SIMD128.
//!
//! Each block type is a `#[repr(C)]` struct in `blocks` with a `GgmlBlock` impl in its
//! family's module; the exported dispatch table is generated from the one type list there.
//!
//! The module has no allocator: the host grows the exported memory and places its buffers
//! above `eq_heap_base()`. Kernels keep their scratch on the stack.

// The host build exists for `cargo test`, which needs std for its harness.
#![cfg_attr(not(test), no_std)]

mod blocks;
mod common;
mod float;
mod kquants;
mod legacy;
mod simd;
mod ternary;
#[cfg(test)]
mod tests;

use blocks::*;
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

/// One row of the dispatch table: a block type's shape and its exported (SIMD) kernels.
struct Kernel {
    ty: u32,
    block: usize,
    bytes: usize,
    quantize: fn(&[f32], &mut [u8]),
    dequantize: fn(&[u8], &mut [f32]),
}

fn quantize_bytes<B: GgmlBlock>(x: &[f32], y: &mut [u8]) {
    B::quantize_row_simd(x, as_blocks_mut(y));
}

fn dequantize_bytes<B: GgmlBlock>(x: &[u8], y: &mut [f32]) {
    B::dequantize_row_simd(as_blocks(x), y);
}

macro_rules! kernel_table {
    ($($block:ident),*) => {
        static KERNELS: &[Kernel] = &[$(Kernel {
            ty: <$block as GgmlBlock>::TYPE,
            block: <$block as GgmlBlock>::BLCK,
            bytes: <$block as GgmlBlock>::BYTES,
            quantize: quantize_bytes::<$block>,
            dequantize: dequantize_bytes::<$block>,
        }),*];
    };
}
for_each_block!(kernel_table);

fn kernel(ty: u32) -> Option<&'static Kernel> {
    KERNELS.iter().find(|k| k.ty == ty)
}

/// Quantizes `n` floats at `src` into type `ty` at `dst`. Returns the bytes written, or
/// usize::MAX for an unknown type or an `n` that is not a whole number of blocks.
///
/// # Safety
/// `src` must hold `n` floats and `dst` the returned number of bytes, not overlapping.
#[no_mangle]
pub unsafe extern "C" fn eq_quantize(ty: u32, src: *const f32, dst: *mut u8, n: usize) -> usize {
    match kernel(ty) {
        Some(k) if n % k.block == 0 => {
            let out = n / k.block * k.bytes;
            (k.quantize)(slice::from_raw_parts(src, n), slice::from_raw_parts_mut(dst, out));
            out
        }
        _ => usize::MAX,
    }
}

/// Dequantizes `n` elements of type `ty` at `src` into floats at `dst`. Returns the bytes
/// read, or usize::MAX for an unknown type or a partial block.
///
/// # Safety
/// `src` must hold the returned number of bytes and `dst` `n` floats, not overlapping.
#[no_mangle]
pub unsafe extern "C" fn eq_dequantize(ty: u32, src: *const u8, dst: *mut f32, n: usize) -> usize {
    match kernel(ty) {
        Some(k) if n % k.block == 0 => {
            let inp = n / k.block * k.bytes;
            (k.dequantize)(slice::from_raw_parts(src, inp), slice::from_raw_parts_mut(dst, n));
            inp
        }
        _ => usize::MAX,
    }
}

/// Elements per block of type `ty` (ggml's blck_size), 0 if the module has no kernel for it.
#[no_mangle]
pub extern "C" fn eq_block_size(ty: u32) -> usize {
    kernel(ty).map_or(0, |k| k.block)
}

/// Bytes per block of type `ty` (ggml's type_size), 0 if the module has no kernel for it.
#[no_mangle]
pub extern "C" fn eq_block_bytes(ty: u32) -> usize {
    kernel(ty).map_or(0, |k| k.bytes)
}

/// How many types the module implements; `eq_type_at(0..count)` lists their ggml ids.
#[no_mangle]
pub extern "C" fn eq_type_count() -> usize {
    KERNELS.len()
}

/// The ggml id of the `i`-th type in the table, or u32::MAX past its end.
#[no_mangle]
pub extern "C" fn eq_type_at(i: usize) -> u32 {
    KERNELS.get(i).map_or(u32::MAX, |k| k.ty)
}
