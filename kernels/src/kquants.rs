//! Q2_K, Q3_K, Q4_K, Q5_K and Q6_K: super-blocks of 256 with quantized sub-block scales.
//!
//! The expensive part, ggml's per-sub-block scale search (make_qkx2_quants, make_qx_quants,
//! make_q3_quants), runs on four sub-blocks at once: lane k of every vector belongs to
//! sub-block k, so each lane performs exactly the scalar sequence of float operations,
//! sums in the same order, and takes the same data-dependent branches (as lane masks).
//! The rest (scale quantization, re-quantizing with the rounded scales, bit packing) is
//! per element or per scale and is done plainly or across consecutive elements.

use crate::common::*;
use crate::simd::*;

pub const Q2_K_BYTES: usize = 84;
pub const Q3_K_BYTES: usize = 110;
pub const Q4_K_BYTES: usize = 144;
pub const Q5_K_BYTES: usize = 176;
pub const Q6_K_BYTES: usize = 210;

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

/// make_qkx2_quants on four sub-blocks of `n` (lane k = sub-block k). Returns (scale, the_min).
#[inline(always)]
fn make_qkx2_x4(n: usize, nmax: i32, g: &mut Group, rmin: f32, rdelta: f32, nstep: i32, use_mad: bool) -> (v128, v128) {
    let (x, w) = (&g.x[..n], &g.w[..n]);
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = w[0];
    let mut sum_x = f32x4_mul(sum_w, x[0]);
    for i in 1..n {
        min = select(f32x4_lt(x[i], min), x[i], min);
        max = select(f32x4_gt(x[i], max), x[i], max);
        sum_w = f32x4_add(sum_w, w[i]);
        sum_x = f32x4_add(sum_x, f32x4_mul(w[i], x[i]));
    }
    min = select(f32x4_gt(min, ZERO), ZERO, min);
    let flat = f32x4_eq(max, min); // ggml returns early for these lanes: L = 0, scale = 0
    let live = v128_not(flat);
    let nmax_v = i32x4_splat(nmax);
    let err = |diff: v128| if use_mad { f32x4_abs(diff) } else { f32x4_mul(diff, diff) };

    let iscale = f32x4_div(f32x4_splat(nmax as f32), f32x4_sub(max, min));
    let mut scale = f32x4_div(f32x4_splat(1.0), iscale);
    let mut best_error = ZERO;
    for i in 0..n {
        let l = i32x4_max(i32x4_min(nearest_int4(f32x4_mul(iscale, f32x4_sub(x[i], min))), nmax_v), ZERO);
        g.l[i] = l;
        let diff = f32x4_sub(f32x4_add(f32x4_mul(scale, f32x4_convert_i32x4(l)), min), x[i]);
        best_error = f32x4_add(best_error, f32x4_mul(w[i], err(diff)));
    }

    let mut laux = [ZERO; 32];
    for is in 0..=nstep {
        // `min` may have moved in an earlier step, and ggml uses the moved value here too.
        let iscale = f32x4_div(f32x4_splat(rmin + rdelta * is as f32 + nmax as f32), f32x4_sub(max, min));
        let (mut sum_l, mut sum_l2, mut sum_xl) = (ZERO, ZERO, ZERO);
        for i in 0..n {
            let l = i32x4_max(i32x4_min(nearest_int4(f32x4_mul(iscale, f32x4_sub(x[i], min))), nmax_v), ZERO);
            laux[i] = l;
            let wl = f32x4_mul(w[i], f32x4_convert_i32x4(l));
            sum_l = f32x4_add(sum_l, wl);
            sum_l2 = f32x4_add(sum_l2, f32x4_mul(wl, f32x4_convert_i32x4(l)));
            sum_xl = f32x4_add(sum_xl, f32x4_mul(wl, x[i]));
        }
        let det = f32x4_sub(f32x4_mul(sum_w, sum_l2), f32x4_mul(sum_l, sum_l));
        let solvable = v128_and(live, f32x4_gt(det, ZERO));
        if !v128_any_true(solvable) {
            continue;
        }
        let mut this_scale = f32x4_div(f32x4_sub(f32x4_mul(sum_w, sum_xl), f32x4_mul(sum_x, sum_l)), det);
        let mut this_min = f32x4_div(f32x4_sub(f32x4_mul(sum_l2, sum_x), f32x4_mul(sum_l, sum_xl)), det);
        let positive_min = f32x4_gt(this_min, ZERO);
        this_min = select(positive_min, ZERO, this_min);
        this_scale = select(positive_min, f32x4_div(sum_xl, sum_l2), this_scale);
        let mut cur_error = ZERO;
        for i in 0..n {
            let diff = f32x4_sub(f32x4_add(f32x4_mul(this_scale, f32x4_convert_i32x4(laux[i])), this_min), x[i]);
            cur_error = f32x4_add(cur_error, f32x4_mul(w[i], err(diff)));
        }
        let better = v128_and(solvable, f32x4_lt(cur_error, best_error));
        if v128_any_true(better) {
            for i in 0..n {
                g.l[i] = select(better, laux[i], g.l[i]);
            }
            best_error = select(better, cur_error, best_error);
            scale = select(better, this_scale, scale);
            min = select(better, this_min, min);
        }
    }
    for i in 0..n {
        g.l[i] = select(flat, ZERO, g.l[i]);
    }
    (select(flat, ZERO, scale), f32x4_neg(min))
}

/// ggml's `if (ax > amax) { amax = ax; max = x; }` scan per lane.
#[inline(always)]
fn signed_absmax_x4(x: &[v128]) -> (v128, v128) {
    let (mut amax, mut max) = (ZERO, ZERO);
    for &xi in x {
        let ax = f32x4_abs(xi);
        let bigger = f32x4_gt(ax, amax);
        amax = select(bigger, ax, amax);
        max = select(bigger, xi, max);
    }
    (amax, max)
}

/// make_qx_quants(16, nmax, x, L, rmse_type = 1, qw = NULL) on four sub-blocks of 16.
#[inline(always)]
fn make_qx_x4(nmax: i32, g: &mut Group) -> v128 {
    const N: usize = 16;
    let x = &g.x[..N];
    let (amax, max) = signed_absmax_x4(x);
    let flat = f32x4_lt(amax, f32x4_splat(GROUP_MAX_EPS));
    let live = v128_not(flat);
    let nmax_v = i32x4_splat(nmax);
    let quant = |iscale: v128, xi: v128| clamp4(nearest_int4(f32x4_mul(iscale, xi)), -nmax, nmax - 1);

    let iscale = f32x4_div(f32x4_splat(-nmax as f32), max);
    let (mut sumlx, mut suml2) = (ZERO, ZERO);
    for i in 0..N {
        let l = quant(iscale, x[i]);
        g.l[i] = i32x4_add(l, nmax_v);
        let w = f32x4_mul(x[i], x[i]);
        let lf = f32x4_convert_i32x4(l);
        sumlx = f32x4_add(sumlx, f32x4_mul(f32x4_mul(w, x[i]), lf));
        suml2 = f32x4_add(suml2, f32x4_mul(f32x4_mul(w, lf), lf));
    }
    let mut scale = select(f32x4_ne(suml2, ZERO), f32x4_div(sumlx, suml2), ZERO);
    let mut best = f32x4_mul(scale, sumlx);
    let mut laux = [ZERO; N];
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        let iscale = f32x4_div(f32x4_splat(-(nmax as f32 + 0.1 * is as f32)), max);
        let (mut sumlx, mut suml2) = (ZERO, ZERO);
        for i in 0..N {
            let l = quant(iscale, x[i]);
            laux[i] = l;
            let w = f32x4_mul(x[i], x[i]);
            let lf = f32x4_convert_i32x4(l);
            sumlx = f32x4_add(sumlx, f32x4_mul(f32x4_mul(w, x[i]), lf));
            suml2 = f32x4_add(suml2, f32x4_mul(f32x4_mul(w, lf), lf));
        }
        let better = v128_and(live, v128_and(f32x4_gt(suml2, ZERO), f32x4_gt(f32x4_mul(sumlx, sumlx), f32x4_mul(best, suml2))));
        if v128_any_true(better) {
            for i in 0..N {
                g.l[i] = select(better, i32x4_add(laux[i], nmax_v), g.l[i]);
            }
            scale = select(better, f32x4_div(sumlx, suml2), scale);
            best = select(better, f32x4_mul(scale, sumlx), best);
        }
    }
    for i in 0..N {
        g.l[i] = select(flat, ZERO, g.l[i]);
    }
    select(flat, ZERO, scale)
}

/// make_q3_quants(16, nmax, x, L, do_rmse = true) on G groups of four sub-blocks of 16. The
/// iterative refinement stops per lane exactly where ggml's loop breaks. Its per-element
/// updates form one long dependency chain per lane, so the G groups are interleaved to give
/// the CPU independent chains to overlap.
#[inline(always)]
fn make_q3_xg<const G: usize>(nmax: i32, gs: &mut [Group; G]) -> [v128; G] {
    const N: usize = 16;
    let quant = |v: v128| clamp4(nearest_int4(v), -nmax, nmax - 1);
    let mut flat = [ZERO; G];
    let mut active = [ZERO; G];
    let (mut sumlx, mut suml2) = ([ZERO; G], [ZERO; G]);
    // w = x*x and w*x are the same in every pass; computing them once changes no bits.
    let (mut w, mut wx) = ([[ZERO; N]; G], [[ZERO; N]; G]);
    for (k, g) in gs.iter_mut().enumerate() {
        let (amax, max) = signed_absmax_x4(&g.x[..N]);
        flat[k] = f32x4_lt(amax, f32x4_splat(GROUP_MAX_EPS));
        active[k] = v128_not(flat[k]);
        let iscale = f32x4_div(f32x4_splat(-nmax as f32), max);
        for i in 0..N {
            let x = g.x[i];
            let l = quant(f32x4_mul(iscale, x));
            g.l[i] = l;
            w[k][i] = f32x4_mul(x, x);
            wx[k][i] = f32x4_mul(w[k][i], x);
            let lf = f32x4_convert_i32x4(l);
            sumlx[k] = f32x4_add(sumlx[k], f32x4_mul(wx[k][i], lf));
            suml2[k] = f32x4_add(suml2[k], f32x4_mul(f32x4_mul(w[k][i], lf), lf));
        }
    }
    for _ in 0..5 {
        // Groups whose four lanes have all stopped are skipped: no lane would update anyway.
        let mut live = [false; G];
        for k in 0..G {
            live[k] = v128_any_true(active[k]);
        }
        if !live.iter().any(|l| *l) {
            break;
        }
        let mut changed = [ZERO; G];
        for i in 0..N {
            for k in 0..G {
                if !live[k] {
                    continue;
                }
                let (w, wx, x) = (w[k][i], wx[k][i], gs[k].x[i]);
                let old = gs[k].l[i];
                let old_f = f32x4_convert_i32x4(old);
                let slx = f32x4_sub(sumlx[k], f32x4_mul(wx, old_f));
                let sl2 = f32x4_sub(suml2[k], f32x4_mul(f32x4_mul(w, old_f), old_f));
                let new_l = quant(f32x4_div(f32x4_mul(x, sl2), slx));
                let new_f = f32x4_convert_i32x4(new_l);
                let slx2 = f32x4_add(slx, f32x4_mul(wx, new_f));
                let sl2b = f32x4_add(sl2, f32x4_mul(f32x4_mul(w, new_f), new_f));
                let gain = f32x4_gt(f32x4_mul(f32x4_mul(slx2, slx2), suml2[k]), f32x4_mul(f32x4_mul(sumlx[k], sumlx[k]), sl2b));
                let take = v128_and(
                    v128_and(active[k], f32x4_gt(slx, ZERO)),
                    v128_and(i32x4_ne(new_l, old), v128_and(f32x4_gt(sl2b, ZERO), gain)),
                );
                gs[k].l[i] = select(take, new_l, old);
                sumlx[k] = select(take, slx2, sumlx[k]);
                suml2[k] = select(take, sl2b, suml2[k]);
                changed[k] = v128_or(changed[k], take);
            }
        }
        for k in 0..G {
            active[k] = v128_and(active[k], changed[k]);
        }
    }
    let nmax_v = i32x4_splat(nmax);
    let mut scales = [ZERO; G];
    for (k, g) in gs.iter_mut().enumerate() {
        for i in 0..N {
            g.l[i] = select(flat[k], ZERO, i32x4_add(g.l[i], nmax_v));
        }
        let scale = select(f32x4_gt(suml2[k], ZERO), f32x4_div(sumlx[k], suml2[k]), ZERO);
        scales[k] = select(flat[k], ZERO, scale);
    }
    scales
}

/// Re-quantizes `n` elements with the rounded scale: clamp(nearest_int((x [+ dm]) / d)) + offset.
/// Q3_K/Q6_K divide x itself (`dm` = None); adding 0 would turn -0 into +0 and NaN payloads
/// matter to nearest_int, so the two forms are kept apart.
#[inline(always)]
unsafe fn requantize(x: *const f32, n: usize, d: f32, dm: Option<f32>, lo: i32, hi: i32, offset: i32, out: &mut [i32]) {
    let dv = f32x4_splat(d);
    let mut i = 0;
    while i < n {
        let num = match dm {
            Some(dm) => f32x4_add(load(x.add(i)), f32x4_splat(dm)),
            None => load(x.add(i)),
        };
        let l = i32x4_add(clamp4(nearest_int4(f32x4_div(num, dv)), lo, hi), i32x4_splat(offset));
        v128_store(out[i..i + 4].as_mut_ptr() as *mut v128, l);
        i += 4;
    }
}

#[inline(always)]
unsafe fn load_i32(l: &[i32], at: usize) -> v128 {
    v128_load(l[at..at + 4].as_ptr() as *const v128)
}

/// ggml's 2-bit packing: byte l of each 32-byte run holds L[l], L[l+32], L[l+64], L[l+96].
#[inline(always)]
unsafe fn pack_2bit(l: &[i32], qs: *mut u8) {
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
        store_bytes16(qs.add(j / 4), v[0], v[1], v[2], v[3]);
        store_bytes16(qs.add(j / 4 + 16), v[4], v[5], v[6], v[7]);
    }
}

/// The 6-bit scale/min packing shared by Q4_K and Q5_K (K_SCALE_SIZE = 12 bytes).
fn pack_scale_min_k4(scales: &[f32; 8], mins: &[f32; 8], max_scale: f32, max_min: f32, out: &mut [u8]) {
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    for j in 0..8 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            out[j] = ls;
            out[j + 4] = lm;
        } else {
            out[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
            out[j - 4] |= (ls >> 4) << 6;
            out[j] |= (lm >> 4) << 6;
        }
    }
}

#[inline(always)]
fn get_scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
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

/// Runs make_qkx2_quants over all sub-blocks of one super-block: `sub` elements per
/// sub-block, weights from `weights(group)`. Fills scales, mins and L.
#[inline(always)]
unsafe fn qkx2_superblock<const NS: usize>(
    x: *const f32,
    sub: usize,
    nmax: i32,
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
    weights: impl Fn(&mut Group, usize),
    scales: &mut [f32; NS],
    mins: &mut [f32; NS],
    l: &mut [i32; QK_K],
) {
    let mut g = Group::new();
    for group in 0..NS / 4 {
        let base = group * 4 * sub;
        to_lanes(x.add(base), sub, &mut g.x);
        weights(&mut g, sub);
        let (scale, the_min) = make_qkx2_x4(sub, nmax, &mut g, rmin, rdelta, nstep, use_mad);
        let (s, m) = (lanes(scale), lanes(the_min));
        scales[group * 4..group * 4 + 4].copy_from_slice(&s);
        mins[group * 4..group * 4 + 4].copy_from_slice(&m);
        from_lanes(&g.l, sub, &mut l[base..base + 4 * sub]);
    }
}

// ---------------------------------------------------------------------------------------
// Q2_K: 16 sub-blocks of 16, 2-bit quants, 4-bit scales and mins.

pub fn quantize_q2_k(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(Q2_K_BYTES)) {
        unsafe { q2_k_block(x, y) }
    }
}

unsafe fn q2_k_block(x: &[f32], y: &mut [u8]) {
    let mut l = [0i32; QK_K];
    let mut scales = [0f32; 16];
    let mut mins = [0f32; 16];
    let abs_weights = |g: &mut Group, n: usize| {
        for i in 0..n {
            g.w[i] = f32x4_abs(g.x[i]);
        }
    };
    qkx2_superblock(x.as_ptr(), 16, 3, -0.5, 0.1, 15, true, abs_weights, &mut scales, &mut mins, &mut l);
    let max_scale = positive_max(&scales);
    let max_min = positive_max(&mins);

    let q4scale = 15.0f32;
    let (sc, rest) = y.split_at_mut(16);
    if max_scale > 0.0 {
        let iscale = q4scale / max_scale;
        for j in 0..16 {
            sc[j] = nearest_int(iscale * scales[j]) as u8;
        }
        write_f16(rest, 64, max_scale / q4scale);
    } else {
        sc.fill(0);
        write_f16(rest, 64, 0.0);
    }
    if max_min > 0.0 {
        let iscale = q4scale / max_min;
        for j in 0..16 {
            sc[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
        }
        write_f16(rest, 66, max_min / q4scale);
    } else {
        write_f16(rest, 66, 0.0);
    }
    let d_all = read_f16(rest, 64);
    let m_all = read_f16(rest, 66);
    for j in 0..16 {
        let d = d_all * (sc[j] & 0xf) as f32;
        if d == 0.0 {
            continue;
        }
        let dm = m_all * (sc[j] >> 4) as f32;
        requantize(x.as_ptr().add(16 * j), 16, d, Some(dm), 0, 3, 0, &mut l[16 * j..16 * j + 16]);
    }
    pack_2bit(&l, rest.as_mut_ptr());
}

pub fn dequantize_q2_k(x: &[u8], y: &mut [f32]) {
    for (x, y) in x.chunks_exact(Q2_K_BYTES).zip(y.chunks_exact_mut(QK_K)) {
        let d = read_f16(x, 80);
        let min = read_f16(x, 82);
        let mut is = 0;
        let mut out = 0;
        for n in (0..QK_K).step_by(128) {
            let q = &x[16 + n / 4..16 + n / 4 + 32];
            for shift in (0..8).step_by(2) {
                for half in 0..2 {
                    let sc = x[is];
                    is += 1;
                    let dl = f32x4_splat(d * (sc & 0xf) as f32);
                    let ml = f32x4_splat(min * (sc >> 4) as f32);
                    for k in 0..4 {
                        let qv = unsafe { load_bytes4(q.as_ptr().add(16 * half + 4 * k)) };
                        let v = v128_and(u32x4_shr(qv, shift), i32x4_splat(3));
                        unsafe { store(y.as_mut_ptr().add(out), f32x4_sub(f32x4_mul(dl, f32x4_convert_i32x4(v)), ml)) };
                        out += 4;
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Q3_K: 16 sub-blocks of 16, 3-bit quants (2 low bits + high-bit mask), 6-bit signed scales.

pub fn quantize_q3_k(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(Q3_K_BYTES)) {
        unsafe { q3_k_block(x, y) }
    }
}

unsafe fn q3_k_block(x: &[f32], y: &mut [u8]) {
    let mut l = [0i32; QK_K];
    let mut scales = [0f32; 16];
    let mut gs = [Group::new(), Group::new(), Group::new(), Group::new()];
    for (group, g) in gs.iter_mut().enumerate() {
        to_lanes(x.as_ptr().add(64 * group), 16, &mut g.x);
    }
    let s = make_q3_xg(4, &mut gs);
    for (group, g) in gs.iter().enumerate() {
        scales[4 * group..4 * group + 4].copy_from_slice(&lanes(s[group]));
        from_lanes(&g.l, 16, &mut l[64 * group..64 * group + 64]);
    }
    let (mut max_scale, mut amax) = (0.0f32, 0.0f32);
    for &s in &scales {
        if fabsf(s) > amax {
            amax = fabsf(s);
            max_scale = s;
        }
    }

    // Layout: hmask[32] qs[64] scales[12] d
    let sc = &mut y[96..108];
    sc.fill(0);
    let d;
    if max_scale != 0.0 {
        let iscale = -32.0 / max_scale;
        for j in 0..16 {
            let mut lj = nearest_int(iscale * scales[j]) as i8 as i32; // stored in an int8_t
            lj = lj.min(31).max(-32) + 32;
            if j < 8 {
                sc[j] = (lj & 0xf) as u8;
            } else {
                sc[j - 8] |= ((lj & 0xf) << 4) as u8;
            }
            lj >>= 4;
            sc[j % 4 + 8] |= (lj << (2 * (j / 4))) as u8;
        }
        d = 1.0 / iscale;
    } else {
        d = 0.0;
    }
    write_f16(y, 108, d);
    let d_all = read_f16(y, 108);
    for j in 0..16 {
        let sc = &y[96..108];
        let low = if j < 8 { sc[j] & 0xf } else { sc[j - 8] >> 4 };
        let s = ((low | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) as i32 - 32) as i8;
        let d = d_all * s as f32;
        if d == 0.0 {
            continue;
        }
        requantize(x.as_ptr().add(16 * j), 16, d, None, -4, 3, 4, &mut l[16 * j..16 * j + 16]);
    }

    // High bit of quant j goes to bit j/32 of hmask[j%32].
    let mut hm = [ZERO; 8];
    for bit in 0..8 {
        for (k, h) in hm.iter_mut().enumerate() {
            let at = 32 * bit + 4 * k;
            let v = load_i32(&l, at);
            let high = i32x4_gt(v, i32x4_splat(3));
            *h = v128_or(*h, v128_and(high, i32x4_splat(1 << bit)));
            v128_store(l[at..at + 4].as_mut_ptr() as *mut v128, i32x4_sub(v, v128_and(high, i32x4_splat(4))));
        }
    }
    store_bytes16(y.as_mut_ptr(), hm[0], hm[1], hm[2], hm[3]);
    store_bytes16(y.as_mut_ptr().add(16), hm[4], hm[5], hm[6], hm[7]);
    pack_2bit(&l, y.as_mut_ptr().add(32));
}

pub fn dequantize_q3_k(x: &[u8], y: &mut [f32]) {
    for (x, y) in x.chunks_exact(Q3_K_BYTES).zip(y.chunks_exact_mut(QK_K)) {
        let d_all = read_f16(x, 108);
        let sc = &x[96..108];
        let mut scales = [0i32; 16];
        for (j, s) in scales.iter_mut().enumerate() {
            let low = if j < 8 { sc[j] & 0xf } else { sc[j - 8] >> 4 };
            *s = ((low | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) as i8) as i32 - 32;
        }
        let mut is = 0;
        let mut out = 0;
        let mut m = 1u32;
        for n in (0..QK_K).step_by(128) {
            let q = &x[32 + n / 4..32 + n / 4 + 32];
            for shift in (0..8).step_by(2) {
                for half in 0..2 {
                    let dl = f32x4_splat(d_all * scales[is] as f32);
                    is += 1;
                    for k in 0..4 {
                        let at = 16 * half + 4 * k;
                        let qv = unsafe { load_bytes4(q.as_ptr().add(at)) };
                        let hv = unsafe { load_bytes4(x.as_ptr().add(at)) };
                        let low = v128_and(u32x4_shr(qv, shift), i32x4_splat(3));
                        let no_high = i32x4_eq(v128_and(hv, u32x4_splat(m)), i32x4_splat(0));
                        let v = i32x4_sub(low, v128_and(no_high, i32x4_splat(4)));
                        unsafe { store(y.as_mut_ptr().add(out), f32x4_mul(dl, f32x4_convert_i32x4(v))) };
                        out += 4;
                    }
                }
                m <<= 1;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Q4_K and Q5_K: 8 sub-blocks of 32, 6-bit scales and mins, weights = rms + |x|.

/// ggml's Q4_K/Q5_K weights: av_x = sqrt(sum(x^2)/32), w = av_x + |x|.
fn rms_weights(g: &mut Group, n: usize) {
    let mut sum_x2 = ZERO;
    for i in 0..n {
        sum_x2 = f32x4_add(sum_x2, f32x4_mul(g.x[i], g.x[i]));
    }
    let av_x = f32x4_sqrt(f32x4_div(sum_x2, f32x4_splat(32.0)));
    for i in 0..n {
        g.w[i] = f32x4_add(av_x, f32x4_abs(g.x[i]));
    }
}

/// Shared body of Q4_K and Q5_K up to the final L (values 0..=nmax); writes d, dmin, scales.
unsafe fn q45_k_common(x: &[f32], y: &mut [u8], nmax: i32, rmin: f32, nstep: i32, l: &mut [i32; QK_K]) {
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    qkx2_superblock(x.as_ptr(), 32, nmax, rmin, 0.1, nstep, false, rms_weights, &mut scales, &mut mins, l);
    let max_scale = positive_max(&scales);
    let max_min = positive_max(&mins);
    pack_scale_min_k4(&scales, &mins, max_scale, max_min, &mut y[4..16]);
    write_f16(y, 0, max_scale / 63.0);
    write_f16(y, 2, max_min / 63.0);
    let d_all = read_f16(y, 0);
    let m_all = read_f16(y, 2);
    for j in 0..8 {
        let (sc, m) = get_scale_min_k4(j, &y[4..16]);
        let d = d_all * sc as f32;
        if d == 0.0 {
            continue;
        }
        let dm = m_all * m as f32;
        requantize(x.as_ptr().add(32 * j), 32, d, Some(dm), 0, nmax, 0, &mut l[32 * j..32 * j + 32]);
    }
}

pub fn quantize_q4_k(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(Q4_K_BYTES)) {
        let mut l = [0i32; QK_K];
        unsafe {
            q45_k_common(x, y, 15, -1.0, 20, &mut l);
            // Layout: d dmin scales[12] qs[128]; byte l of run j holds L[j+l] | L[j+l+32] << 4.
            let q = y.as_mut_ptr().add(16);
            for j in (0..QK_K).step_by(64) {
                let mut v = [ZERO; 8];
                for (k, slot) in v.iter_mut().enumerate() {
                    *slot = v128_or(load_i32(&l, j + 4 * k), i32x4_shl(load_i32(&l, j + 32 + 4 * k), 4));
                }
                store_bytes16(q.add(j / 2), v[0], v[1], v[2], v[3]);
                store_bytes16(q.add(j / 2 + 16), v[4], v[5], v[6], v[7]);
            }
        }
    }
}

pub fn dequantize_q4_k(x: &[u8], y: &mut [f32]) {
    for (x, y) in x.chunks_exact(Q4_K_BYTES).zip(y.chunks_exact_mut(QK_K)) {
        let d = read_f16(x, 0);
        let min = read_f16(x, 2);
        let scales = &x[4..16];
        for (run, j) in (0..QK_K).step_by(64).enumerate() {
            let (sc1, m1) = get_scale_min_k4(2 * run, scales);
            let (sc2, m2) = get_scale_min_k4(2 * run + 1, scales);
            let (d1, m1) = (f32x4_splat(d * sc1 as f32), f32x4_splat(min * m1 as f32));
            let (d2, m2) = (f32x4_splat(d * sc2 as f32), f32x4_splat(min * m2 as f32));
            let q = &x[16 + j / 2..16 + j / 2 + 32];
            for k in 0..8 {
                let qv = unsafe { load_bytes4(q.as_ptr().add(4 * k)) };
                let lo = f32x4_convert_i32x4(v128_and(qv, i32x4_splat(0xf)));
                let hi = f32x4_convert_i32x4(u32x4_shr(qv, 4));
                unsafe {
                    store(y.as_mut_ptr().add(j + 4 * k), f32x4_sub(f32x4_mul(d1, lo), m1));
                    store(y.as_mut_ptr().add(j + 32 + 4 * k), f32x4_sub(f32x4_mul(d2, hi), m2));
                }
            }
        }
    }
}

pub fn quantize_q5_k(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(Q5_K_BYTES)) {
        let mut l = [0i32; QK_K];
        unsafe {
            q45_k_common(x, y, 31, -0.5, 15, &mut l);
            // Layout: d dmin scales[12] qh[32] qs[128]. Run n/64 uses qh bits 2n/64 and 2n/64+1.
            let mut qh = [ZERO; 8];
            let ql = y.as_mut_ptr().add(48);
            for (run, n) in (0..QK_K).step_by(64).enumerate() {
                let (m1, m2) = (i32x4_splat(1 << (2 * run)), i32x4_splat(2 << (2 * run)));
                let mut v = [ZERO; 8];
                for k in 0..8 {
                    let l1 = load_i32(&l, n + 4 * k);
                    let l2 = load_i32(&l, n + 32 + 4 * k);
                    let (h1, h2) = (i32x4_gt(l1, i32x4_splat(15)), i32x4_gt(l2, i32x4_splat(15)));
                    qh[k] = v128_or(qh[k], v128_or(v128_and(h1, m1), v128_and(h2, m2)));
                    let l1 = i32x4_sub(l1, v128_and(h1, i32x4_splat(16)));
                    let l2 = i32x4_sub(l2, v128_and(h2, i32x4_splat(16)));
                    v[k] = v128_and(v128_or(l1, i32x4_shl(l2, 4)), i32x4_splat(0xff));
                }
                store_bytes16(ql.add(32 * run), v[0], v[1], v[2], v[3]);
                store_bytes16(ql.add(32 * run + 16), v[4], v[5], v[6], v[7]);
            }
            store_bytes16(y.as_mut_ptr().add(16), qh[0], qh[1], qh[2], qh[3]);
            store_bytes16(y.as_mut_ptr().add(32), qh[4], qh[5], qh[6], qh[7]);
        }
    }
}

pub fn dequantize_q5_k(x: &[u8], y: &mut [f32]) {
    for (x, y) in x.chunks_exact(Q5_K_BYTES).zip(y.chunks_exact_mut(QK_K)) {
        let d = read_f16(x, 0);
        let min = read_f16(x, 2);
        let scales = &x[4..16];
        for (run, j) in (0..QK_K).step_by(64).enumerate() {
            let (sc1, m1) = get_scale_min_k4(2 * run, scales);
            let (sc2, m2) = get_scale_min_k4(2 * run + 1, scales);
            let (d1, m1) = (f32x4_splat(d * sc1 as f32), f32x4_splat(min * m1 as f32));
            let (d2, m2) = (f32x4_splat(d * sc2 as f32), f32x4_splat(min * m2 as f32));
            let (u1, u2) = (u32x4_splat(1 << (2 * run)), u32x4_splat(2 << (2 * run)));
            for k in 0..8 {
                let qv = unsafe { load_bytes4(x.as_ptr().add(48 + 32 * run + 4 * k)) };
                let hv = unsafe { load_bytes4(x.as_ptr().add(16 + 4 * k)) };
                let b1 = v128_and(i32x4_ne(v128_and(hv, u1), i32x4_splat(0)), i32x4_splat(16));
                let b2 = v128_and(i32x4_ne(v128_and(hv, u2), i32x4_splat(0)), i32x4_splat(16));
                let lo = f32x4_convert_i32x4(i32x4_add(v128_and(qv, i32x4_splat(0xf)), b1));
                let hi = f32x4_convert_i32x4(i32x4_add(u32x4_shr(qv, 4), b2));
                unsafe {
                    store(y.as_mut_ptr().add(j + 4 * k), f32x4_sub(f32x4_mul(d1, lo), m1));
                    store(y.as_mut_ptr().add(j + 32 + 4 * k), f32x4_sub(f32x4_mul(d2, hi), m2));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Q6_K: 16 sub-blocks of 16, 6-bit quants (4 low + 2 high bits), int8 scales.

pub fn quantize_q6_k(x: &[f32], y: &mut [u8]) {
    for (x, y) in x.chunks_exact(QK_K).zip(y.chunks_exact_mut(Q6_K_BYTES)) {
        unsafe { q6_k_block(x, y) }
    }
}

unsafe fn q6_k_block(x: &[f32], y: &mut [u8]) {
    let mut l = [0i32; QK_K];
    let mut scales = [0f32; 16];
    let mut g = Group::new();
    for group in 0..4 {
        to_lanes(x.as_ptr().add(64 * group), 16, &mut g.x);
        let s = make_qx_x4(32, &mut g);
        scales[4 * group..4 * group + 4].copy_from_slice(&lanes(s));
        from_lanes(&g.l, 16, &mut l[64 * group..64 * group + 64]);
    }
    let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
    for &s in &scales {
        if fabsf(s) > max_abs_scale {
            max_abs_scale = fabsf(s);
            max_scale = s;
        }
    }
    // Layout: ql[128] qh[64] scales[16] d
    if max_abs_scale < GROUP_MAX_EPS {
        y.fill(0); // the whole block, d = fp16(0) included
        return;
    }
    let iscale = -128.0 / max_scale;
    write_f16(y, 208, 1.0 / iscale);
    for ib in 0..16 {
        y[192 + ib] = nearest_int(iscale * scales[ib]).min(127) as u8;
    }
    let d_all = read_f16(y, 208);
    for j in 0..16 {
        let d = d_all * (y[192 + j] as i8) as f32;
        if d == 0.0 {
            continue;
        }
        requantize(x.as_ptr().add(16 * j), 16, d, None, -32, 31, 32, &mut l[16 * j..16 * j + 16]);
    }
    for (half, j) in (0..QK_K).step_by(128).enumerate() {
        let ql = y.as_mut_ptr().add(64 * half);
        let qh = y.as_mut_ptr().add(128 + 32 * half);
        let (mut a, mut b, mut h) = ([ZERO; 8], [ZERO; 8], [ZERO; 8]);
        for k in 0..8 {
            let at = j + 4 * k;
            let (l1, l2, l3, l4) = (load_i32(&l, at), load_i32(&l, at + 32), load_i32(&l, at + 64), load_i32(&l, at + 96));
            let nib = |v: v128| v128_and(v, i32x4_splat(0xf));
            a[k] = v128_or(nib(l1), i32x4_shl(nib(l3), 4));
            b[k] = v128_or(nib(l2), i32x4_shl(nib(l4), 4));
            let top = |v: v128, s: u32| i32x4_shl(i32x4_shr(v, 4), s);
            h[k] = v128_and(v128_or(v128_or(top(l1, 0), top(l2, 2)), v128_or(top(l3, 4), top(l4, 6))), i32x4_splat(0xff));
        }
        store_bytes16(ql, a[0], a[1], a[2], a[3]);
        store_bytes16(ql.add(16), a[4], a[5], a[6], a[7]);
        store_bytes16(ql.add(32), b[0], b[1], b[2], b[3]);
        store_bytes16(ql.add(48), b[4], b[5], b[6], b[7]);
        store_bytes16(qh, h[0], h[1], h[2], h[3]);
        store_bytes16(qh.add(16), h[4], h[5], h[6], h[7]);
    }
}

pub fn dequantize_q6_k(x: &[u8], y: &mut [f32]) {
    for (x, y) in x.chunks_exact(Q6_K_BYTES).zip(y.chunks_exact_mut(QK_K)) {
        let d = read_f16(x, 208);
        for (half, n) in (0..QK_K).step_by(128).enumerate() {
            let ql = &x[64 * half..64 * half + 64];
            let qh = &x[128 + 32 * half..128 + 32 * half + 32];
            let sc = &x[192 + 8 * half..192 + 8 * half + 8];
            for k in 0..8 {
                let is = (4 * k) / 16;
                let (a, b, h) = unsafe { (load_bytes4(ql.as_ptr().add(4 * k)), load_bytes4(ql.as_ptr().add(32 + 4 * k)), load_bytes4(qh.as_ptr().add(4 * k))) };
                let six = |low: v128, s: u32| i32x4_sub(v128_or(low, i32x4_shl(v128_and(u32x4_shr(h, s), i32x4_splat(3)), 4)), i32x4_splat(32));
                let q1 = six(v128_and(a, i32x4_splat(0xf)), 0);
                let q2 = six(v128_and(b, i32x4_splat(0xf)), 2);
                let q3 = six(u32x4_shr(a, 4), 4);
                let q4 = six(u32x4_shr(b, 4), 6);
                let ds = |i: usize| f32x4_splat(d * (sc[i] as i8) as f32);
                unsafe {
                    let out = y.as_mut_ptr().add(n + 4 * k);
                    store(out, f32x4_mul(ds(is), f32x4_convert_i32x4(q1)));
                    store(out.add(32), f32x4_mul(ds(is + 2), f32x4_convert_i32x4(q2)));
                    store(out.add(64), f32x4_mul(ds(is + 4), f32x4_convert_i32x4(q3)));
                    store(out.add(96), f32x4_mul(ds(is + 6), f32x4_convert_i32x4(q4)));
                }
            }
        }
    }
}
