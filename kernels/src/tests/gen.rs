//! Deterministic test rows: a small PRNG and the row recipes (the same families of inputs as
//! test/kernels.test.ts uses against ggml: ordinary data, and every path ggml special-cases).

/// splitmix64: tiny, fast, and good enough to drive property tests.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn sign(&mut self) -> f64 {
        if self.next_u64() & 1 == 0 {
            1.0
        } else {
            -1.0
        }
    }

    pub fn gauss(&mut self) -> f64 {
        (-2.0 * (1.0 - self.unit()).ln()).sqrt() * (2.0 * std::f64::consts::PI * self.unit()).cos()
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// What one segment of a row looks like.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Normal,
    Uniform,
    Positive,
    Negative,
    Zeros,
    SignedZeros,
    /// ±0 mixed with values of one sign: the min (or max) is a zero, and which zero comes
    /// first decides its sign.
    ZerosAndOneSign,
    Constant,
    /// Normal data with a few values 10^2..10^7 times larger.
    Outliers,
    Subnormal,
    Tiny,
    Huge,
    /// ±f32::MAX and their neighbours.
    PlusMinusMax,
    SmallInts,
    /// Multiples of 1/2: quants that land exactly on rounding ties.
    Halves,
    Sparse,
    /// Normal data with a few NaNs (any payload, either sign) and infinities.
    NonFinite,
}

pub const KINDS: [Kind; 17] = [
    Kind::Normal,
    Kind::Uniform,
    Kind::Positive,
    Kind::Negative,
    Kind::Zeros,
    Kind::SignedZeros,
    Kind::ZerosAndOneSign,
    Kind::Constant,
    Kind::Outliers,
    Kind::Subnormal,
    Kind::Tiny,
    Kind::Huge,
    Kind::PlusMinusMax,
    Kind::SmallInts,
    Kind::Halves,
    Kind::Sparse,
    Kind::NonFinite,
];

/// A row of `n` floats: 1-4 kinds, a typical magnitude 10^-44..10^37 jittered per segment,
/// segments sized like sub-blocks or larger so neighbouring groups differ.
pub fn row(rng: &mut Rng, n: usize) -> Vec<f32> {
    let kinds: Vec<Kind> = (0..1 + rng.below(4)).map(|_| rng.pick(&KINDS)).collect();
    let exponent = rng.below(82) as i32 - 44;
    let spread = rng.below(9) as i32;
    let segment = rng.pick(&[16usize, 32, 64, 256, 1024]);
    let mut out = vec![0f32; n];
    for start in (0..n).step_by(segment) {
        let end = n.min(start + segment);
        let kind = rng.pick(&kinds);
        let e = exponent + rng.below(2 * spread as usize + 1) as i32 - spread;
        let scale = 10f64.powi(e.clamp(-45, 38)).min(3e38);
        fill(rng, kind, scale, &mut out[start..end]);
    }
    out
}

fn fill(rng: &mut Rng, kind: Kind, scale: f64, out: &mut [f32]) {
    if kind == Kind::PlusMinusMax {
        return fill_max(rng, out);
    }
    let c = rng.sign() * scale * (0.5 + rng.unit());
    let pow2 = 2f64.powi(scale.log2().round() as i32);
    for v in out.iter_mut() {
        *v = match kind {
            Kind::Normal | Kind::Outliers | Kind::NonFinite => rng.gauss() * scale,
            Kind::Uniform => (rng.unit() * 2.0 - 1.0) * scale,
            Kind::Positive => (0.1 + rng.unit()) * scale,
            Kind::Negative => -(0.1 + rng.unit()) * scale,
            Kind::Zeros => 0.0,
            Kind::SignedZeros => rng.sign() * 0.0,
            Kind::ZerosAndOneSign => match rng.below(3) {
                0 => 0.0,
                1 => -0.0,
                _ => c.signum() * (1 + rng.below(7)) as f64 * pow2,
            },
            Kind::Constant => c,
            Kind::Subnormal => (rng.unit() * 2.0 - 1.0) * 1.1754942e-38 * 10f64.powf(-rng.unit() * 7.0),
            Kind::Tiny => rng.gauss() * 1e-38 * 10f64.powf(-rng.unit() * 6.0),
            Kind::Huge => (rng.unit() * 2.0 - 1.0) * 3.4e38,
            Kind::PlusMinusMax => unreachable!(),
            Kind::SmallInts => ((rng.unit() * 2.0 - 1.0) * 8.0).round() * pow2,
            Kind::Halves => (((rng.unit() * 2.0 - 1.0) * 64.0).round() / 2.0) * pow2,
            Kind::Sparse => {
                if rng.unit() < 0.9 {
                    0.0
                } else {
                    rng.gauss() * scale
                }
            }
        } as f32;
    }
    if kind == Kind::Outliers {
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(out.len());
            out[at] = (rng.sign() * scale * 10f64.powf(2.0 + rng.unit() * 5.0)) as f32;
        }
    }
    if kind == Kind::NonFinite {
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(out.len());
            out[at] = match rng.below(3) {
                0 => f32::from_bits(0x7f80_0000 | (rng.next_u64() as u32 & 0x807f_ffff) | 1),
                1 => f32::INFINITY,
                _ => f32::NEG_INFINITY,
            };
        }
    }
}

fn fill_max(rng: &mut Rng, out: &mut [f32]) {
    for v in out.iter_mut() {
        let near = f32::from_bits(f32::MAX.to_bits() - rng.below(3) as u32);
        *v = if rng.next_u64() & 1 == 0 { near } else { -near };
    }
}

/// Hand-picked rows of one block each, the cases ggml's code branches on.
pub fn edge_rows(n: usize) -> Vec<Vec<f32>> {
    let row = |f: &dyn Fn(usize) -> f32| (0..n).map(f).collect::<Vec<f32>>();
    let sin = |i: usize| (i as f32).sin();
    vec![
        row(&|_| 0.0),
        row(&|_| -0.0),
        row(&|i| if i == 0 { -0.0 } else { 0.0 }),
        row(&|i| if i == n - 1 { -0.0 } else { 0.0 }),
        row(&|_| 1.0),
        row(&|_| -3.5),
        row(&|_| 1e-45),
        row(&|_| -1.1754942e-38),
        row(&|_| f32::MAX),
        row(&|_| -f32::MAX),
        row(&|i| if i % 2 == 1 { f32::MAX } else { -f32::MAX }),
        row(&|i| if i == n / 2 { 1.0 } else { 0.0 }),
        row(&|i| if i == n / 2 { -1.0 } else { 0.0 }),
        // |max| tie with opposite signs: the first one wins.
        row(&|i| if i == 0 { -2.0 } else if i == n - 1 { 2.0 } else { 0.5 }),
        row(&|i| if i == 0 { 2.0 } else if i == n - 1 { -2.0 } else { 0.5 }),
        row(&|i| (i % 17) as f32 - 8.0),
        row(&|i| ((i % 33) as f32 - 16.0) / 2.0),
        row(&|i| ((i * 7) % 64) as f32 - 32.0),
        row(&|i| if i < n / 2 { 0.0 } else { (i % 5) as f32 - 2.0 }),
        row(&|i| if i == n / 2 { 1e30 } else { sin(i) * 1e-3 }),
        row(&|i| if i == n / 2 { f32::NAN } else { sin(i) }),
        row(&|i| if i == 0 { f32::NAN } else { sin(i) }),
        row(&|i| if i == n - 1 { -f32::NAN } else { sin(i) }),
        row(&|i| if i == n / 2 { f32::INFINITY } else { sin(i) }),
        row(&|i| if i == n / 2 { f32::NEG_INFINITY } else { sin(i) }),
        row(&|i| if i == 0 { f32::INFINITY } else if i == n - 1 { f32::NEG_INFINITY } else { 0.0 }),
        row(&|_| f32::NAN),
        row(&|_| f32::INFINITY),
        row(&|i| sin(i) * 1e-40),
        row(&|i| sin(i) * 2e-39),
        row(&|i| sin(i) * 3e-39),
        row(&|i| 1.0 + i as f32 * 2f32.powi(-20)),
    ]
}
