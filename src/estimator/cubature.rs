//! Standard-normal node sets ε with weights, so that E_q\[f\] ≈ Σᵢ wᵢ f(μ + Lεᵢ) for
//! q = N(μ, LLᵀ): Gauss–Hermite tensor grids (deterministic) and antithetic Monte-Carlo
//! samples (seeded, reused across flow iterations as common random numbers).

use nalgebra::{DMatrix, SVector};
use rand::Rng;
use rand_distr::StandardNormal;

/// One node ε ∈ ℝᴰ of a rule for N(0, I) with its weight (weights sum to 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StandardNode<const D: usize> {
    /// ε.
    pub point: SVector<f64, D>,
    /// w.
    pub weight: f64,
}

/// One-dimensional Gauss–Hermite rule for N(0, 1) with `n` nodes (Golub–Welsch:
/// eigenvalues of the Jacobi matrix with off-diagonal √k; weights are the squared first
/// eigenvector components). Exact for polynomials of degree ≤ 2n − 1.
pub fn gauss_hermite_1d(n: usize) -> Vec<(f64, f64)> {
    assert!(n >= 1, "Gauss-Hermite rule needs at least one node");
    let mut jacobi = DMatrix::<f64>::zeros(n, n);
    for k in 1..n {
        let b = (k as f64).sqrt();
        jacobi[(k - 1, k)] = b;
        jacobi[(k, k - 1)] = b;
    }
    let eig = jacobi.symmetric_eigen();
    let mut rule: Vec<(f64, f64)> = (0..n).map(|i| (eig.eigenvalues[i], eig.eigenvectors[(0, i)].powi(2))).collect();
    rule.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Symmetrise exactly so that odd moments vanish to the last bit.
    for i in 0..n / 2 {
        let j = n - 1 - i;
        let x = 0.5 * (rule[j].0 - rule[i].0);
        let w = 0.5 * (rule[i].1 + rule[j].1);
        rule[i] = (-x, w);
        rule[j] = (x, w);
    }
    if n % 2 == 1 {
        rule[n / 2].0 = 0.0;
    }
    let total: f64 = rule.iter().map(|r| r.1).sum();
    rule.iter().map(|&(x, w)| (x, w / total)).collect()
}

/// Tensor-product Gauss–Hermite rule with `points_per_axis`ᴰ nodes; exact for
/// polynomials of degree ≤ 2·points_per_axis − 1 in each coordinate.
pub fn gauss_hermite_nodes<const D: usize>(points_per_axis: usize) -> Vec<StandardNode<D>> {
    let rule = gauss_hermite_1d(points_per_axis);
    let count = points_per_axis.pow(D as u32);
    let mut nodes = Vec::with_capacity(count);
    for index in 0..count {
        let mut rest = index;
        let mut point = SVector::<f64, D>::zeros();
        let mut weight = 1.0;
        for axis in 0..D {
            let (x, w) = rule[rest % points_per_axis];
            rest /= points_per_axis;
            point[axis] = x;
            weight *= w;
        }
        nodes.push(StandardNode { point, weight });
    }
    nodes
}

/// `samples` (rounded up to even) antithetic standard-normal nodes ±εᵢ with equal
/// weights: odd moments are exact, so a linear function's mean is exact.
pub fn antithetic_normal_nodes<const D: usize, R: Rng>(samples: usize, rng: &mut R) -> Vec<StandardNode<D>> {
    let pairs = samples.div_ceil(2).max(1);
    let weight = 0.5 / pairs as f64;
    let mut nodes = Vec::with_capacity(2 * pairs);
    for _ in 0..pairs {
        let point = SVector::<f64, D>::from_fn(|_, _| rng.sample(StandardNormal));
        nodes.push(StandardNode { point, weight });
        nodes.push(StandardNode { point: -point, weight });
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_hermite_moments_are_exact() {
        let nodes = gauss_hermite_nodes::<2>(5);
        let m = |f: &dyn Fn(&SVector<f64, 2>) -> f64| nodes.iter().map(|n| n.weight * f(&n.point)).sum::<f64>();
        assert!((m(&|_| 1.0) - 1.0).abs() < 1e-14);
        assert!((m(&|p| p[0] * p[0]) - 1.0).abs() < 1e-13);
        assert!((m(&|p| p[0].powi(4)) - 3.0).abs() < 1e-12);
        assert!((m(&|p| p[0].powi(8)) - 105.0).abs() < 1e-9);
        assert!((m(&|p| p[0] * p[1].powi(3))).abs() < 1e-14);
    }
}
