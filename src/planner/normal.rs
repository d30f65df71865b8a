//! Standard normal CDF/PDF and the Gaussian expectation of a convex piecewise-linear
//! function, used to take E_z of ‖Σ̇‖₂ in closed form (Σ̇ is affine in z).

use std::f64::consts::FRAC_1_SQRT_2;

/// 1/√(2π).
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// (Φ(w), φ(w)) of the standard normal. Φ by Abramowitz & Stegun 7.1.26 (absolute error
/// ≤ 7.5e-8), sharing the one exp(−w²/2) with φ, so a call costs one `exp`.
#[inline]
pub fn normal_cdf_pdf(w: f64) -> (f64, f64) {
    const P: f64 = 0.327_591_1;
    const A: [f64; 5] = [0.254_829_592, -0.284_496_736, 1.421_413_741, -1.453_152_027, 1.061_405_429];
    let x = w.abs() * FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + P * x);
    let e = (-x * x).exp();
    let erfc = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4])))) * e;
    let tail = 0.5 * erfc;
    let cdf = if w >= 0.0 { 1.0 - tail } else { tail };
    (cdf, e * FRAC_1_SQRT_2PI)
}

/// E[(z − c)₊] for z ~ N(m, σ²): (m − c)Φ(a) + σφ(a), a = (m − c)/σ.
#[inline]
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
