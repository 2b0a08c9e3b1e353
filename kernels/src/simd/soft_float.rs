//! x86's float behaviour, written out for the portable lanes: NaN propagation, and the two
//! IEEE operations core lacks in this Rust (sqrt, trunc).

pub(super) const QUIET: u32 = 0x0040_0000;
pub(super) const INDEFINITE: u32 = 0xffc0_0000;

pub(super) fn quiet(x: f32) -> f32 {
    f32::from_bits(x.to_bits() | QUIET)
}

/// x86's NaN rule for a binary operation whose IEEE result is `r`.
pub(super) fn nan_rule(a: f32, b: f32, r: f32) -> f32 {
    if !r.is_nan() {
        r
    } else if a.is_nan() {
        quiet(a)
    } else if b.is_nan() {
        quiet(b)
    } else {
        f32::from_bits(INDEFINITE)
    }
}

pub(super) fn trunc(x: f32) -> f32 {
    let bits = x.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - 127;
    if x.is_nan() {
        quiet(x)
    } else if e >= 23 {
        x // integral, or infinite
    } else if e < 0 {
        f32::from_bits(bits & 0x8000_0000)
    } else {
        f32::from_bits(bits & !(0x007f_ffffu32 >> e))
    }
}

/// Correctly rounded square root in integer arithmetic (core has no sqrt before Rust 1.85).
pub(super) fn sqrt(x: f32) -> f32 {
    let bits = x.to_bits();
    if x.is_nan() {
        return quiet(x);
    }
    if bits & 0x7fff_ffff == 0 || bits == 0x7f80_0000 {
        return x; // ±0 and +inf are their own roots
    }
    if bits >> 31 != 0 {
        return f32::from_bits(INDEFINITE);
    }
    // x = m * 2^e with 2^23 <= m < 2^24, subnormals normalised.
    let (mut m, mut e) = (bits & 0x007f_ffff, (bits >> 23) as i32);
    if e == 0 {
        e = 1;
        while m & 0x0080_0000 == 0 {
            m <<= 1;
            e -= 1;
        }
    } else {
        m |= 0x0080_0000;
    }
    let mut e = e - 150 - 26;
    let mut n = (m as u64) << 26;
    if e & 1 != 0 {
        n <<= 1;
        e -= 1;
    }
    // sqrt(x) = sqrt(n) * 2^(e/2) and 2^24 <= floor(sqrt(n)) < 2^26. An exact tie between two
    // floats is impossible for a square root, so the first dropped bit alone decides rounding.
    let q = isqrt(n);
    let k = if q >= 1 << 25 { 2 } else { 1 };
    let sig = (q >> k) + ((q >> (k - 1)) & 1);
    let exp = e / 2 + k as i32;
    // sig may have rounded up to 2^24; adding it to the exponent field carries correctly.
    f32::from_bits((((exp + 150) as u32) << 23) + (sig as u32 - 0x0080_0000))
}

fn isqrt(n: u64) -> u64 {
    let (mut rem, mut root, mut bit) = (n, 0u64, 1u64 << 62);
    while bit > n {
        bit >>= 2;
    }
    while bit != 0 {
        if rem >= root + bit {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    root
}

