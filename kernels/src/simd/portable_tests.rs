//! The portable lanes against the WebAssembly definitions they stand in for.

use super::super::soft_float::{sqrt, INDEFINITE};
use super::*;

#[test]
fn sqrt_matches_the_hosts_correctly_rounded_sqrt() {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..2_000_000u32 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        // Every exponent, both signs, the specials, and all of the first subnormals.
        let bits = if i < 70_000 { i } else { s as u32 };
        let x = f32::from_bits(bits);
        let (ours, host) = (sqrt(x).to_bits(), x.sqrt().to_bits());
        if x.is_nan() || x < 0.0 {
            assert!(f32::from_bits(ours).is_nan(), "sqrt({:#x})", bits);
        } else {
            assert_eq!(ours, host, "sqrt({:#x})", bits);
        }
    }
}

#[test]
fn lanes_follow_wasm_semantics() {
    let a = i32x4_splat(-70000);
    assert_eq!(i16x8_narrow_i32x4(a, i32x4_splat(40000)).halves(), [0x8000, 0x8000, 0x8000, 0x8000, 0x7fff, 0x7fff, 0x7fff, 0x7fff]);
    assert_eq!(u16x8_narrow_i32x4(a, i32x4_splat(70000)).halves(), [0, 0, 0, 0, 0xffff, 0xffff, 0xffff, 0xffff]);
    assert_eq!(u8x16_narrow_i16x8(i16x8_splat(-5), i16x8_splat(300)).bytes()[7..9], [0, 255]);
    assert_eq!(i8x16_narrow_i16x8(i16x8_splat(-300), i16x8_splat(300)).bytes()[7..9], [0x80, 0x7f]);
    assert_eq!(i32x4_bitmask(u32x4(0x8000_0000, 0, 0xffff_ffff, 1)), 0b0101);
    assert_eq!(i8x16_bitmask(u32x4(0x80, 0, 0, 0x8000_0000)), 0x8001);
    assert_eq!(i32x4_shuffle::<0, 4, 1, 5>(u32x4(0, 1, 2, 3), u32x4(4, 5, 6, 7)), u32x4(0, 4, 1, 5));
    assert_eq!(i32x4_shl(u32x4(1, 2, 3, 4), 33), u32x4(2, 4, 6, 8));
    assert_eq!(i8x16_shl(u8x16_splat(0x81), 1), u8x16_splat(0x02));
    assert_eq!(i32x4_shr(i32x4_splat(-16), 2), i32x4_splat(-4));
    assert_eq!(u32x4_shr(i32x4_splat(-16), 28), u32x4_splat(15));
    assert_eq!(i32x4_trunc_sat_f32x4(f32x4(f32::NAN, 3e9, -3e9, -2.7)), v128::from_i([0, i32::MAX, i32::MIN, -2]));
    assert_eq!(f32x4_trunc(f32x4(-0.5, 2.9, -1e30, 8388607.5)).f(), [-0.0, 2.0, -1e30, 8388607.0]);
    assert_eq!(f32x4_extract_lane::<0>(f32x4_trunc(f32x4_splat(-0.5))).to_bits(), 0x8000_0000);
    // x86 NaN rules: first NaN operand wins, invalid operations give the indefinite NaN.
    let (n1, n2) = (f32::from_bits(0x7fc0_0001), f32::from_bits(0xff80_0002));
    assert_eq!(f32x4_add(f32x4_splat(n1), f32x4_splat(n2)).0[0], 0x7fc0_0001);
    assert_eq!(f32x4_mul(f32x4_splat(n2), f32x4_splat(n1)).0[0], 0xffc0_0002);
    assert_eq!(f32x4_sub(f32x4_splat(f32::INFINITY), f32x4_splat(f32::INFINITY)).0[0], INDEFINITE);
    // pmin/pmax are selects: the first operand survives NaN and signed-zero ties.
    assert_eq!(f32x4_pmin(f32x4_splat(n1), f32x4_splat(1.0)).0[0], 0x7fc0_0001);
    assert_eq!(f32x4_pmax(f32x4_splat(-0.0), f32x4_splat(0.0)).0[0], 0x8000_0000);
    let mem = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
    let v = unsafe { v128_load(mem[1..].as_ptr() as *const v128) };
    assert_eq!(v.0[0], 0x0504_0302);
    assert_eq!(u32x4_extend_high_u16x8(v), u32x4(0x0b0a, 0x0d0c, 0x0f0e, 0x1110));
    assert_eq!(u16x8_extend_low_u8x16(v).halves()[..3], [2, 3, 4]);
}
