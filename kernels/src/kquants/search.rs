//! ggml's per-sub-block scale searches on four sub-blocks at once (lane k = sub-block k).
//! Every lane runs the scalar sequence of `search_scalar` exactly: same operations, same
//! summation order, the same data-dependent branches taken per lane as masks.

use super::*;

/// make_qkx2_quants on four sub-blocks of `n` (lane k = sub-block k). Returns (scale, the_min).
#[inline(always)]
pub(super) fn make_qkx2_x4(n: usize, nmax: i32, g: &mut Group, rmin: f32, rdelta: f32, nstep: i32, use_mad: bool) -> (v128, v128) {
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
pub(super) fn make_qx_x4(nmax: i32, g: &mut Group) -> v128 {
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
pub(super) fn make_q3_xg<const G: usize>(nmax: i32, gs: &mut [Group; G]) -> [v128; G] {
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


/// Runs make_qkx2_quants over all sub-blocks of one super-block: `sub` elements per
/// sub-block, weights from `weights(group)`. Fills scales, mins and L.
#[inline(always)]
pub(super) fn qkx2_superblock<const NS: usize>(
    x: &[f32],
    sub: usize,
    nmax: i32,
    (rmin, rdelta, nstep): (f32, f32, i32),
    use_mad: bool,
    weights: impl Fn(&mut Group, usize),
    scales: &mut [f32; NS],
    mins: &mut [f32; NS],
    l: &mut [i32; QK_K],
) {
    assert!(x.len() >= NS * sub && NS * sub <= QK_K && sub <= 32 && sub % 4 == 0);
    let mut g = Group::new();
    for group in 0..NS / 4 {
        let base = group * 4 * sub;
        // SAFETY: 4 * sub floats from base are within x (asserted above).
        unsafe { to_lanes(x.as_ptr().add(base), sub, &mut g.x) };
        weights(&mut g, sub);
        let (scale, the_min) = make_qkx2_x4(sub, nmax, &mut g, rmin, rdelta, nstep, use_mad);
        let (s, m) = (lanes(scale), lanes(the_min));
        scales[group * 4..group * 4 + 4].copy_from_slice(&s);
        mins[group * 4..group * 4 + 4].copy_from_slice(&m);
        from_lanes(&g.l, sub, &mut l[base..base + 4 * sub]);
    }
}
