//! The exported table against the trait impls it is generated from.

use crate::blocks::*;
use crate::{eq_block_bytes, eq_block_size, eq_dequantize, eq_quantize, eq_type_at, eq_type_count};

/// The exports for one type agree with its GgmlBlock impl, and eq_quantize/eq_dequantize
/// run its SIMD kernels.
fn exports_match<B: GgmlBlock>(name: &str) {
    assert_eq!(eq_block_size(B::TYPE), B::BLCK, "{name}: eq_block_size");
    assert_eq!(eq_block_bytes(B::TYPE), B::BYTES, "{name}: eq_block_bytes");
    assert_eq!(B::BYTES, core::mem::size_of::<B>(), "{name}: BYTES is the struct's size");
    let n = 4 * B::BLCK.max(8);
    let x: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01).collect();
    let mut direct = vec![0u8; n / B::BLCK * B::BYTES];
    B::quantize_row_simd(&x, as_blocks_mut(&mut direct));
    let mut exported = vec![0u8; direct.len()];
    assert_eq!(unsafe { eq_quantize(B::TYPE, x.as_ptr(), exported.as_mut_ptr(), n) }, direct.len(), "{name}: eq_quantize's size");
    assert_eq!(exported, direct, "{name}: eq_quantize's bytes");
    let mut back = vec![0f32; n];
    assert_eq!(unsafe { eq_dequantize(B::TYPE, exported.as_ptr(), back.as_mut_ptr(), n) }, direct.len(), "{name}: eq_dequantize's size");
    if B::BLCK > 1 {
        assert_eq!(unsafe { eq_quantize(B::TYPE, x.as_ptr(), exported.as_mut_ptr(), B::BLCK - 1) }, usize::MAX, "{name}: partial block");
    }
}

macro_rules! all_exports_match {
    ($($block:ident),*) => {
        #[test]
        fn exports_match_the_block_types() {
            let types = [$(<$block as GgmlBlock>::TYPE),*];
            assert_eq!(eq_type_count(), types.len());
            for (i, ty) in types.iter().enumerate() {
                assert_eq!(eq_type_at(i), *ty, "the table lists the types in for_each_block! order");
                assert!(!types[..i].contains(ty), "ggml id {ty} registered twice");
            }
            assert_eq!(eq_type_at(types.len()), u32::MAX);
            $(exports_match::<$block>(stringify!($block));)*
        }
    };
}
for_each_block!(all_exports_match);

#[test]
fn unknown_types_are_refused() {
    for ty in [0u32, 9, 15, 16, 29, 36, 39, 1000] {
        // F32 (0) is copied by the host; Q8_1, Q8_K and the IQ types have no kernel here.
        assert_eq!((eq_block_size(ty), eq_block_bytes(ty)), (0, 0), "type {ty}");
        let (x, mut y) = ([0f32; 256], [0u8; 1024]);
        assert_eq!(unsafe { eq_quantize(ty, x.as_ptr(), y.as_mut_ptr(), 256) }, usize::MAX, "type {ty}");
    }
}
