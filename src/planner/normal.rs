//! Standard normal CDF/PDF and the Gaussian expectation of a convex piecewise-linear
//! function, used to take E_z of ‖Σ̇‖₂ in closed form (Σ̇ is affine in z).
//!
//! No libm call on the hot path: exp is [`exp_nonpositive`] (a polynomial with a stated
//! bound, branch-free, so the loops over landmark hypotheses that call it vectorise).

use std::f64::consts::FRAC_1_SQRT_2;

/// 1/√(2π).
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Relative error bound of [`exp_nonpositive`] on [−708, 0] (checked against `f64::exp`
/// by a dense sweep in the tests; measured ≤ 2.3e-16).
pub const EXP_NONPOSITIVE_MAX_REL_ERROR: f64 = 5e-16;

/// exp(x) for x ≤ 0 without libm, branch-free (vectorisable): x = k ln 2 + r with
/// k = round(x/ln 2) (by the 1.5·2⁵² rounding trick), |r| ≤ ln 2/2, exp(r) by its Taylor
/// polynomial of degree 13 (truncation ≤ (ln 2/2)¹⁴/14! < 5e-18 relative), 2ᵏ built from
/// its exponent bits. Relative error ≤ [`EXP_NONPOSITIVE_MAX_REL_ERROR`] on [−708, 0];
/// x < −708 (and −∞) is evaluated at −708 (≈ 3.3e-308: absolute error below that);
/// NaN gives NaN. Not for x > 0.
#[inline(always)]
pub fn exp_nonpositive(x: f64) -> f64 {
    const LOG2_E: f64 = std::f64::consts::LOG2_E;
    // fdlibm's split of ln 2: k·LN2_HI is exact for |k| < 2²⁰.
    const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000); // 6.93147180369123816490e-01
    const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76); // 1.90821492927058770002e-10
    const ROUND: f64 = 6_755_399_441_055_744.0; // 1.5·2⁵²
    // 1/k!, k = 0..=13 (k! is exact in f64, so each is correctly rounded); Horner from the top.
    const C: [f64; 14] = [
        1.0,
        1.0,
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5_040.0,
        1.0 / 40_320.0,
        1.0 / 362_880.0,
        1.0 / 3_628_800.0,
        1.0 / 39_916_800.0,
        1.0 / 479_001_600.0,
        1.0 / 6_227_020_800.0,
    ];
    // A select, not f64::max: NaN < −708 is false, so NaN propagates.
    let x = if x < -708.0 { -708.0 } else { x };
    let t = x * LOG2_E + ROUND;
    let k = t - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut p = C[13];
    for &c in C[..13].iter().rev() {
        p = p * r + c;
    }
    // t's low mantissa bits hold k (two's complement): 2ᵏ has exponent field k + 1023.
    let scale = f64::from_bits(t.to_bits().wrapping_add(1023) << 52);
    p * scale
}

/// (Φ(w), φ(w)) of the standard normal. Φ by Abramowitz & Stegun 7.1.26 (absolute error
/// ≤ 7.5e-8; [`NORMAL_CDF_MAX_ABS_ERROR`]), sharing the one exp(−w²/2) with φ
/// ([`exp_nonpositive`], relative error ≤ 5e-16), branch-free.
#[inline(always)]
pub fn normal_cdf_pdf(w: f64) -> (f64, f64) {
    const P: f64 = 0.327_591_1;
    const A: [f64; 5] = [0.254_829_592, -0.284_496_736, 1.421_413_741, -1.453_152_027, 1.061_405_429];
    let x = w.abs() * FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P * x);
    let e = exp_nonpositive(-x * x);
    let erfc = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4])))) * e;
    let tail = 0.5 * erfc;
    let cdf = if w >= 0.0 { 1.0 - tail } else { tail };
    (cdf, e * FRAC_1_SQRT_2PI)
}

/// Absolute error bound of Φ in [`normal_cdf_pdf`] (A&S 7.1.26: |ε(erfc)| ≤ 1.5e-7, so
/// 7.5e-8 for Φ = erfc/2), checked on a dense sweep against an independent quadrature.
pub const NORMAL_CDF_MAX_ABS_ERROR: f64 = 7.5e-8;

/// E[(z − c)₊] for z ~ N(m, σ²): (m − c)Φ(a) + σφ(a), a = (m − c)/σ.
#[inline(always)]
fn expected_positive_part(m: f64, sigma: f64, c: f64) -> f64 {
    let a = (m - c) / sigma;
    let (cdf, pdf) = normal_cdf_pdf(a);
    (m - c) * cdf + sigma * pdf
}

/// Beyond this many σ the negative-z tail term is below 1e-16 and skipped.
const NEGATIVE_TAIL_SKIP_SIGMAS: f64 = 8.5;

/// E_z max(|zλ₁ − 1|, |zλ₂ − 1|) for z ~ N(m, σ²), exactly (up to Φ's 7.5e-8).
///
/// This is 2σ²‖Σ̇‖₂ with Σ̇ = (zM − I)/(2σ²) and λ₁ ≤ λ₂ the eigenvalues of M.
/// For λ₁ ≥ 0 (M is PSD, the usual case) the function is
/// 1 − λ₁z + (λ₂ − λ₁)(−z)₊ + (λ₁ + λ₂)(z − z*)₊ with z* = 2/(λ₁ + λ₂), so its mean is
/// two positive-part expectations; otherwise the upper envelope of the four lines
/// ±(λᵢz − 1) is integrated piece by piece.
pub fn expected_max_abs_affine(lambda_min: f64, lambda_max: f64, m: f64, sigma: f64) -> f64 {
    let (l1, l2) = if lambda_min <= lambda_max { (lambda_min, lambda_max) } else { (lambda_max, lambda_min) };
    if l1 >= 0.0 {
        let sum = l1 + l2;
        let mut value = 1.0 - l1 * m;
        if m < NEGATIVE_TAIL_SKIP_SIGMAS * sigma {
            value += (l2 - l1) * expected_positive_part(-m, sigma, 0.0);
        }
        if sum > 0.0 {
            value += sum * expected_positive_part(m, sigma, 2.0 / sum);
        }
        value
    } else {
        expected_upper_envelope(&[(l1, -1.0), (-l1, 1.0), (l2, -1.0), (-l2, 1.0)], m, sigma)
    }
}

/// Σⱼ E_z max(|zλ₁ − 1|, |zλ₂ − 1|), z ~ N(‖x − yⱼ‖, σ²), over the landmark hypotheses
/// yⱼ = (`ys_x[j]`, `ys_y[j]`) (metres) for a PSD M (0 ≤ λ₁ ≤ λ₂): the l1 ≥ 0 branch of
/// [`expected_max_abs_affine`] summed over j, as one branch-free pass in four lanes
/// (vectorised: the exp is [`exp_nonpositive`], Φ is A&S 7.1.26). Error per term ≤
/// [`NORMAL_CDF_MAX_ABS_ERROR`]·((λ₂ − λ₁)m + (λ₁ + λ₂)|m − 2/(λ₁ + λ₂)|) plus the exp's
/// 5e-16 relative on the σφ terms (m = ‖x − yⱼ‖).
pub(crate) fn sum_expected_max_abs_affine_psd(
    lambda_min: f64,
    lambda_max: f64,
    x: [f64; 2],
    ys_x: &[f64],
    ys_y: &[f64],
    sigma: f64,
) -> f64 {
    const LANES: usize = 4;
    let (l1, l2) = (lambda_min, lambda_max);
    let sum = l1 + l2;
    // sum = 0 (M = 0): the kink is at infinity and its term is 0; any finite c does.
    let (kink, kink_coef) = if sum > 0.0 { (2.0 / sum, sum) } else { (0.0, 0.0) };
    let diff = l2 - l1;
    let skip = NEGATIVE_TAIL_SKIP_SIGMAS * sigma;
    let term = |yx: f64, yy: f64| {
        let (dx, dy) = (x[0] - yx, x[1] - yy);
        let m = (dx * dx + dy * dy).sqrt();
        let tail = expected_positive_part(-m, sigma, 0.0);
        let tail = if m < skip { tail } else { 0.0 };
        let mut value = 1.0 - l1 * m;
        value += diff * tail;
        value + kink_coef * expected_positive_part(m, sigma, kink)
    };
    let n = ys_x.len().min(ys_y.len());
    let (xs, ys) = (&ys_x[..n], &ys_y[..n]);
    let mut acc = [0.0f64; LANES];
    for (cx, cy) in xs.chunks_exact(LANES).zip(ys.chunks_exact(LANES)) {
        // The explicit lane index keeps four independent partial sums in SIMD registers.
        #[allow(clippy::needless_range_loop)]
        for lane in 0..LANES {
            acc[lane] += term(cx[lane], cy[lane]);
        }
    }
    let full = n - n % LANES;
    let mut total = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for j in full..n {
        total += term(xs[j], ys[j]);
    }
    total
}

/// E_z max_k (a_k z + b_k) for z ~ N(m, σ²): splits the line at every pairwise
/// intersection, takes the active line on each interval and sums
/// a·E[z 1{z∈I}] + b·P(z∈I).
pub fn expected_upper_envelope(lines: &[(f64, f64)], m: f64, sigma: f64) -> f64 {
    let mut breaks: Vec<f64> = Vec::with_capacity(lines.len() * lines.len());
    for (i, &(a1, b1)) in lines.iter().enumerate() {
        for &(a2, b2) in &lines[i + 1..] {
            if a1 != a2 {
                let z = (b2 - b1) / (a1 - a2);
                if z.is_finite() {
                    breaks.push(z);
                }
            }
        }
    }
    breaks.sort_by(|a, b| a.total_cmp(b));
    breaks.dedup();
    let active = |z: f64| {
        lines
            .iter()
            .copied()
            .max_by(|p, q| (p.0 * z + p.1).total_cmp(&(q.0 * z + q.1)))
            .unwrap_or((0.0, 0.0))
    };
    // Cumulative (Φ(w), E[z 1{z < c}]) at c; ±∞ handled as (0, 0) and (1, m).
    let cumulative = |c: f64| -> (f64, f64) {
        if c == f64::NEG_INFINITY {
            return (0.0, 0.0);
        }
        if c == f64::INFINITY {
            return (1.0, m);
        }
        let w = (c - m) / sigma;
        let (cdf, pdf) = normal_cdf_pdf(w);
        (cdf, m * cdf - sigma * pdf)
    };
    let mut edges = Vec::with_capacity(breaks.len() + 2);
    edges.push(f64::NEG_INFINITY);
    edges.extend(breaks.iter().copied());
    edges.push(f64::INFINITY);
    let mut total = 0.0;
    let mut lower = cumulative(edges[0]);
    for k in 0..edges.len() - 1 {
        let (lo, hi) = (edges[k], edges[k + 1]);
        let probe = match (lo.is_finite(), hi.is_finite()) {
            (true, true) => 0.5 * (lo + hi),
            (false, true) => hi - 1.0,
            (true, false) => lo + 1.0,
            (false, false) => m,
        };
        let (a, b) = active(probe);
        let upper = cumulative(hi);
        total += a * (upper.1 - lower.1) + b * (upper.0 - lower.0);
        lower = upper;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trapezoid quadrature of f against N(m, σ²) on m ± 12σ (independent reference).
    fn quadrature(f: impl Fn(f64) -> f64, m: f64, sigma: f64) -> f64 {
        let n = 200_000;
        let (lo, hi) = (m - 12.0 * sigma, m + 12.0 * sigma);
        let h = (hi - lo) / n as f64;
        (0..=n)
            .map(|i| {
                let z = lo + i as f64 * h;
                let w = if i == 0 || i == n { 0.5 } else { 1.0 };
                w * f(z) * (-(z - m).powi(2) / (2.0 * sigma * sigma)).exp()
            })
            .sum::<f64>()
            * h
            / (sigma * (2.0 * std::f64::consts::PI).sqrt())
    }

    #[test]
    fn exp_nonpositive_meets_its_bound_on_a_dense_sweep() {
        // Every 2e-5 over [−708, 0] (35.4 million points would be slow; 3.54 million with
        // an irrational-ish step hit every reduction interval thousands of times), plus
        // the neighbourhood of 0 and of the reduction boundaries k·ln 2 ± ln 2/2.
        let mut worst = 0.0f64;
        let mut check = |x: f64| {
            let (got, want) = (exp_nonpositive(x), x.exp());
            let rel = ((got - want) / want).abs();
            worst = worst.max(rel);
            assert!(rel <= EXP_NONPOSITIVE_MAX_REL_ERROR, "x = {x}: {got} vs {want} ({rel:e})");
        };
        let step = 2.000_013_7e-4;
        let mut x = 0.0;
        while x >= -708.0 {
            check(x);
            x -= step;
        }
        for k in 0..1022 {
            let edge = -(k as f64 + 0.5) * std::f64::consts::LN_2;
            if edge >= -708.0 {
                for d in [-1e-12, -1e-15, 0.0, 1e-15, 1e-12] {
                    check((edge + d).min(0.0));
                }
            }
        }
        for e in 1..300 {
            check(-(10f64.powf(-(e as f64) / 10.0)));
        }
        check(-708.0);
        eprintln!("exp_nonpositive: worst relative error {worst:e}");
        assert!(worst > 0.0, "the sweep compared something");
        // Below −708 the value is exp(−708) ≈ 3.3e-308: absolute error below that.
        for x in [-708.5, -745.0, -1e4, f64::NEG_INFINITY] {
            assert!((exp_nonpositive(x) - x.exp()).abs() <= 3.31e-308, "{x}");
        }
        assert!(exp_nonpositive(f64::NAN).is_nan());
    }

    /// Φ(w) by composite Simpson quadrature of φ from 0 (independent of A&S and of the
    /// polynomial exp): cumulative over a 1e-4 grid, error ~1e-16.
    fn reference_cdf_table(w_max: f64, step: f64) -> Vec<(f64, f64)> {
        let pdf = |w: f64| (-0.5 * w * w).exp() * FRAC_1_SQRT_2PI;
        let mut out = vec![(0.0, 0.5)];
        let (mut w, mut cdf) = (0.0f64, 0.5f64);
        while w < w_max {
            let h = step;
            cdf += h / 6.0 * (pdf(w) + 4.0 * pdf(w + 0.5 * h) + pdf(w + h));
            w += h;
            out.push((w, cdf));
        }
        out
    }

    #[test]
    fn normal_cdf_meets_the_abramowitz_stegun_bound_on_a_dense_sweep() {
        let table = reference_cdf_table(12.0, 1e-4);
        let mut worst = 0.0f64;
        for &(w, cdf) in &table {
            for (arg, want) in [(w, cdf), (-w, 1.0 - cdf)] {
                let (got, pdf) = normal_cdf_pdf(arg);
                let err = (got - want).abs();
                worst = worst.max(err);
                assert!(err <= NORMAL_CDF_MAX_ABS_ERROR, "Φ({arg}) = {got} vs {want} ({err:e})");
                // φ: the exp's bound plus the rounding of its argument w²/2 (≈ w²·u relative,
                // as in any evaluation of exp(−w²/2)).
                let want_pdf = (-0.5 * arg * arg).exp() * FRAC_1_SQRT_2PI;
                let tol = (EXP_NONPOSITIVE_MAX_REL_ERROR + 2.5e-16 * (1.0 + arg * arg)) * want_pdf;
                assert!((pdf - want_pdf).abs() <= tol + 1e-300, "φ({arg}): {pdf:e} vs {want_pdf:e}");
            }
        }
        eprintln!("Φ: worst absolute error {worst:e}");
        // A&S's bound is attained to within a factor ~1.3 (not a vacuous tolerance).
        assert!(worst > 5e-8, "worst {worst:e}");
    }

    #[test]
    fn cdf_matches_known_values() {
        assert!((normal_cdf_pdf(0.0).0 - 0.5).abs() < 1e-9);
        assert!((normal_cdf_pdf(1.959_963_985).0 - 0.975).abs() < 1e-7);
        assert!((normal_cdf_pdf(-1.0).0 - 0.158_655_253_931_457).abs() < 1e-7);
        assert!((normal_cdf_pdf(1.0).1 - 0.241_970_724_519_143).abs() < 1e-15);
    }

    #[test]
    fn closed_form_matches_quadrature_psd_and_indefinite() {
        // (λ₁, λ₂, m, σ): PSD with all kinks inside the bulk, negative z likely, and indefinite.
        for &(l1, l2, m, sigma) in &[
            (0.05, 0.4, 4.0, 1.4),
            (0.0, 1.0, 0.5, 1.0),
            (0.3, 0.3, 6.0, 2.0),
            (-0.2, 0.5, 3.0, 1.5),
            (-0.5, -0.1, 2.0, 0.7),
            (0.0, 0.0, 1.0, 1.0),
        ] {
            let f = |z: f64| (z * l1 - 1.0f64).abs().max((z * l2 - 1.0f64).abs());
            let reference = quadrature(f, m, sigma);
            let closed = expected_max_abs_affine(l1, l2, m, sigma);
            let generic = expected_upper_envelope(&[(l1, -1.0), (-l1, 1.0), (l2, -1.0), (-l2, 1.0)], m, sigma);
            assert!((closed - reference).abs() < 1e-6, "{l1} {l2} {m} {sigma}: {closed} vs {reference}");
            assert!((generic - reference).abs() < 1e-6, "generic {l1} {l2}: {generic} vs {reference}");
        }
    }
}
