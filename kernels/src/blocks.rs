//! Every block layout the kernels read and write, as ggml-common.h declares them, and the
//! trait that ties a layout to its ggml type id and its kernels.
//!
//! Fields are byte arrays (fp16 values are `Half`, two little-endian bytes), so every block
//! has alignment 1, no padding and no invalid bit patterns. That is what lets the exports
//! view any byte buffer the host hands over as a slice of blocks, and the size asserts below
//! pin each struct to ggml's `type_size`.

use crate::common::{fp16_to_fp32, fp32_to_fp16, QK, QK_K};
use core::mem::{align_of, size_of};

/// ggml_half: IEEE binary16, stored little-endian.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Half(pub [u8; 2]);

impl Half {
    pub const ZERO: Half = Half([0, 0]);

    /// ggml's GGML_FP32_TO_FP16 (round to nearest even, NaN kept as NaN).
    #[inline(always)]
    pub fn from_f32(v: f32) -> Half {
        Half(fp32_to_fp16(v).to_le_bytes())
    }

    /// ggml's GGML_FP16_TO_FP32.
    #[inline(always)]
    pub fn to_f32(self) -> f32 {
        fp16_to_fp32(u16::from_le_bytes(self.0))
    }
}

/// Marker for plain byte layouts.
///
/// # Safety
/// Implementors are `repr(C)` structs of byte arrays: alignment 1, no padding, every bit
/// pattern valid. Only `layout!` implements it, next to the asserts that check the first two.
pub unsafe trait Plain: Copy + 'static {}

macro_rules! layout {
    ($($name:ident = $bytes:expr),* $(,)?) => {$(
        const _: () = assert!(size_of::<$name>() == $bytes && align_of::<$name>() == 1);
        // SAFETY: asserted just above; the fields are byte arrays.
        unsafe impl Plain for $name {}
    )*};
}

/// One element as F16 bits (ggml treats F16 as blocks of one).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockF16 {
    pub h: Half,
}

/// One element as bfloat16 bits.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockBF16 {
    pub h: [u8; 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ4_0 {
    pub d: Half,
    pub qs: [u8; QK / 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ4_1 {
    pub d: Half,
    pub m: Half,
    pub qs: [u8; QK / 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ5_0 {
    pub d: Half,
    pub qh: [u8; 4],
    pub qs: [u8; QK / 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ5_1 {
    pub d: Half,
    pub m: Half,
    pub qh: [u8; 4],
    pub qs: [u8; QK / 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ8_0 {
    pub d: Half,
    pub qs: [u8; QK], // int8_t in ggml
}

/// 16 sub-blocks of 16: 2-bit quants, 4-bit scale (low nibble) and min (high nibble) each.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ2K {
    pub scales: [u8; QK_K / 16],
    pub qs: [u8; QK_K / 4],
    pub d: Half,
    pub dmin: Half,
}

/// 16 sub-blocks of 16: 3-bit quants (2 low bits in qs, the high bit in hmask), 6-bit scales.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ3K {
    pub hmask: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 4],
    pub scales: [u8; 12],
    pub d: Half,
}

/// 8 sub-blocks of 32: 4-bit quants, 6-bit scales and mins packed in 12 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ4K {
    pub d: Half,
    pub dmin: Half,
    pub scales: [u8; 12],
    pub qs: [u8; QK_K / 2],
}

/// 8 sub-blocks of 32: 5-bit quants (4 in qs, the 5th in qh), scales as in Q4_K.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ5K {
    pub d: Half,
    pub dmin: Half,
    pub scales: [u8; 12],
    pub qh: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 2],
}

/// 16 sub-blocks of 16: 6-bit quants (4 low bits in ql, 2 high in qh), int8 scales.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockQ6K {
    pub ql: [u8; QK_K / 2],
    pub qh: [u8; QK_K / 4],
    pub scales: [u8; QK_K / 16], // int8_t in ggml
    pub d: Half,
}

/// Ternary: 5 trits a byte in qs, 4 a byte in qh.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockTQ1_0 {
    pub qs: [u8; (QK_K - 4 * QK_K / 64) / 5],
    pub qh: [u8; QK_K / 64],
    pub d: Half,
}

/// Ternary: 2 bits a trit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockTQ2_0 {
    pub qs: [u8; QK_K / 4],
    pub d: Half,
}

// ggml's type_size for each, as ggml.c's type_traits table has it.
layout! {
    BlockF16 = 2, BlockBF16 = 2,
    BlockQ4_0 = 18, BlockQ4_1 = 20, BlockQ5_0 = 22, BlockQ5_1 = 24, BlockQ8_0 = 34,
    BlockQ2K = 84, BlockQ3K = 110, BlockQ4K = 144, BlockQ5K = 176, BlockQ6K = 210,
    BlockTQ1_0 = 54, BlockTQ2_0 = 66,
}

/// A ggml block type: its id, its shape, and its kernels. Each kernel has a scalar form that
/// follows ggml's C loops one to one, and a SIMD form that must produce the same bytes (the
/// SIMD form is what the module exports; `cargo test` holds it to the scalar one).
pub trait GgmlBlock: Plain {
    /// The `ggml_type` id (ggml.h); the TS side passes the same number.
    const TYPE: u32;
    /// Elements per block, ggml's `blck_size`.
    const BLCK: usize;
    /// Bytes per block, ggml's `type_size`.
    const BYTES: usize = size_of::<Self>();

    /// Quantizes `x` (exactly `BLCK` floats) into one block.
    fn quantize_scalar(x: &[f32], y: &mut Self);
    fn quantize_simd(x: &[f32], y: &mut Self);
    /// Expands one block into `y` (exactly `BLCK` floats), as ggml's `to_float`.
    fn dequantize_scalar(&self, y: &mut [f32]);
    fn dequantize_simd(&self, y: &mut [f32]);

    fn quantize_row_scalar(x: &[f32], y: &mut [Self]) {
        for (x, y) in x.chunks_exact(Self::BLCK).zip(y) {
            Self::quantize_scalar(x, y);
        }
    }

    fn quantize_row_simd(x: &[f32], y: &mut [Self]) {
        for (x, y) in x.chunks_exact(Self::BLCK).zip(y) {
            Self::quantize_simd(x, y);
        }
    }

    fn dequantize_row_scalar(x: &[Self], y: &mut [f32]) {
        for (x, y) in x.iter().zip(y.chunks_exact_mut(Self::BLCK)) {
            x.dequantize_scalar(y);
        }
    }

    fn dequantize_row_simd(x: &[Self], y: &mut [f32]) {
        for (x, y) in x.iter().zip(y.chunks_exact_mut(Self::BLCK)) {
            x.dequantize_simd(y);
        }
    }
}

/// The whole blocks at the start of `bytes`.
pub fn as_blocks<B: Plain>(bytes: &[u8]) -> &[B] {
    // SAFETY: B is a padding-free byte layout of alignment 1 (Plain), so any bytes are a valid B.
    unsafe { core::slice::from_raw_parts(bytes.as_ptr() as *const B, bytes.len() / size_of::<B>()) }
}

pub fn as_blocks_mut<B: Plain>(bytes: &mut [u8]) -> &mut [B] {
    // SAFETY: as in as_blocks; the borrow of `bytes` is moved into the result.
    unsafe { core::slice::from_raw_parts_mut(bytes.as_mut_ptr() as *mut B, bytes.len() / size_of::<B>()) }
}

/// Calls `$m!` with every block type the module implements. This list is the only place a
/// type is registered: the exported dispatch table and the twin tests are generated from it.
macro_rules! for_each_block {
    ($m:ident) => {
        $m!(
            BlockF16, BlockBF16, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K,
            BlockQ6K, BlockTQ1_0, BlockTQ2_0
        );
    };
}
pub(crate) use for_each_block;
