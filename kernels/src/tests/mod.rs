//! Host tests: every block type's SIMD kernels against its scalar twin, byte for byte (and
//! bit for bit for dequantized floats), on generated rows. On the host the SIMD kernels run
//! on the portable lanes, so this is the same code the WASM module executes.
//!
//! EDGEQUANT_KERNEL_SOAK=N multiplies the number of generated rows.

mod gen;
mod table;

use crate::blocks::*;
use gen::Rng;

fn soak() -> usize {
    std::env::var("EDGEQUANT_KERNEL_SOAK").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1)
}

fn first_diff<T: PartialEq>(a: &[T], b: &[T]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

fn hex_floats(x: &[f32]) -> String {
    x.iter().map(|v| format!("{:08x}", v.to_bits())).collect::<Vec<_>>().join(" ")
}

/// Quantizes `x` with both forms, then dequantizes the result with both forms. Output
/// buffers start out different, so a byte one form forgets to write shows up too.
fn check_row<B: GgmlBlock>(x: &[f32], what: &dyn Fn() -> String) {
    let blocks = x.len() / B::BLCK;
    let mut scalar = vec![0x00u8; blocks * B::BYTES];
    let mut simd = vec![0xa5u8; blocks * B::BYTES];
    B::quantize_row_scalar(x, as_blocks_mut(&mut scalar));
    B::quantize_row_simd(x, as_blocks_mut(&mut simd));
    if let Some(i) = first_diff(&scalar, &simd) {
        let (b, bytes) = (i / B::BYTES, |v: &[u8]| format!("{:?}", &v[i / B::BYTES * B::BYTES..(i / B::BYTES + 1) * B::BYTES]));
        panic!(
            "{}: quantize_row_simd differs from quantize_row_scalar in block {b}, byte {}\n input (f32 bits) {}\n scalar {}\n simd   {}",
            what(),
            i % B::BYTES,
            hex_floats(&x[b * B::BLCK..(b + 1) * B::BLCK]),
            bytes(&scalar),
            bytes(&simd)
        );
    }
    check_dequantize::<B>(&scalar, what);
}

/// Dequantizes `bytes` with both forms and compares the float bits (NaN payloads and signed
/// zeros included).
fn check_dequantize<B: GgmlBlock>(bytes: &[u8], what: &dyn Fn() -> String) {
    let n = bytes.len() / B::BYTES * B::BLCK;
    let mut scalar = vec![f32::from_bits(0x7fa0_0001); n];
    let mut simd = vec![f32::from_bits(0xffa0_0002); n];
    B::dequantize_row_scalar(as_blocks(bytes), &mut scalar);
    B::dequantize_row_simd(as_blocks(bytes), &mut simd);
    let (a, b): (Vec<u32>, Vec<u32>) = (scalar.iter().map(|v| v.to_bits()).collect(), simd.iter().map(|v| v.to_bits()).collect());
    if let Some(i) = first_diff(&a, &b) {
        let blk = i / B::BLCK;
        panic!(
            "{}: dequantize_row_simd differs from dequantize_row_scalar at element {i} (block {blk}): scalar {:08x}, simd {:08x}\n block bytes {:?}",
            what(),
            a[i],
            b[i],
            &bytes[blk * B::BYTES..(blk + 1) * B::BYTES]
        );
    }
}

/// A random byte, a quarter of the time one that makes the high byte of an fp16 NaN or
/// infinity: wherever the block keeps its scales, pairs of NaN scales then occur often.
fn random_byte(rng: &mut Rng) -> u8 {
    let r = rng.next_u64();
    if r & 3 == 0 {
        0x7c | ((r >> 8) as u8 & 0x83)
    } else {
        (r >> 8) as u8
    }
}

/// The property test for one block type.
fn simd_equals_scalar<B: GgmlBlock>(name: &str) {
    let cases = 1000 * soak();
    let (mut blocks, mut finite) = (0, 0);
    for case in 0..cases {
        let seed = (B::TYPE as u64) << 32 | case as u64;
        let mut rng = Rng::new(seed);
        let count = if B::BLCK == 1 { 1 + rng.below(600) } else { 1 + rng.below(8) };
        let x = gen::row(&mut rng, count * B::BLCK);
        check_row::<B>(&x, &|| format!("{name}, generated row (seed {seed:#x}, {count} blocks)"));
        blocks += count;
        // Legacy and ternary blocks with NaN or inf take the scalar path even in the SIMD
        // kernel; most rows must be finite for the SIMD code to be what is compared.
        finite += x.chunks(B::BLCK).filter(|b| b.iter().all(|v| v.is_finite())).count();
    }
    for (i, row) in gen::edge_rows(B::BLCK.max(32)).iter().enumerate() {
        check_row::<B>(row, &|| format!("{name}, edge row {i}"));
    }
    // Dequantizers also see arbitrary bytes: any fp16 scale, NaN and infinities included.
    for case in 0..cases {
        let seed = (B::TYPE as u64) << 32 | 0x8000_0000 | case as u64;
        let mut rng = Rng::new(seed);
        let bytes: Vec<u8> = (0..(1 + rng.below(8)) * B::BYTES).map(|_| random_byte(&mut rng)).collect();
        check_dequantize::<B>(&bytes, &|| format!("{name}, random bytes (seed {seed:#x})"));
    }
    assert!(finite * 10 >= blocks * 7, "{name}: only {finite} of {blocks} generated blocks are finite");
    println!("{name}: {blocks} generated blocks ({finite} finite), SIMD = scalar");
}

/// One test per block type, named after it: tests::twins::BlockQ4K::simd_equals_scalar.
macro_rules! twin_tests {
    ($($block:ident),*) => {
        mod twins {$(
            #[allow(non_snake_case)]
            mod $block {
                #[test]
                fn simd_equals_scalar() {
                    super::super::simd_equals_scalar::<crate::blocks::$block>(stringify!($block));
                }
            }
        )*}
    };
}
for_each_block!(twin_tests);
