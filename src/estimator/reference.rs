//! The KL-optimal Gaussian for one update, computed independently of the flows:
//! minimise J(μ, L) = −E_q[ln p(z|s)] + KL(q ‖ prior), q = N(μ, LLᵀ), L lower triangular
//! with log-diagonal, by Nelder–Mead on a high-order Gauss–Hermite rule, from several
//! starting points (J has one local minimum per posterior lobe); the best minimum wins.

use nalgebra::{DVector, SMatrix, SVector};

use super::belief::{ln_det, symmetrise, GaussianBelief};
use super::cubature::{gauss_hermite_nodes, StandardNode};
use super::error::EstimatorError;
use super::model::MeasurementModel;

/// Result of [`kl_optimal_gaussian`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KlOptimum<const D: usize> {
    /// argmin_q KL(q ‖ p(·|z)).
    pub belief: GaussianBelief<D>,
    /// J at the optimum = −ELBO, nats.
    pub objective: f64,
}

fn unpack<const D: usize>(x: &DVector<f64>) -> (SVector<f64, D>, SMatrix<f64, D, D>) {
    let mean = SVector::<f64, D>::from_fn(|i, _| x[i]);
    let mut l = SMatrix::<f64, D, D>::zeros();
    let mut k = D;
    for i in 0..D {
        for j in 0..=i {
            l[(i, j)] = if i == j { x[k].exp() } else { x[k] };
            k += 1;
        }
    }
    (mean, l)
}

fn objective<const D: usize, M: MeasurementModel<D>>(
    prior: &GaussianBelief<D>,
    prior_precision: &SMatrix<f64, D, D>,
    prior_ln_det: f64,
    model: &M,
    nodes: &[StandardNode<D>],
    x: &DVector<f64>,
) -> f64 {
    let (mean, l) = unpack::<D>(x);
    let cov = l * l.transpose();
    let ln_det_cov: f64 = 2.0 * l.diagonal().iter().map(|v| v.ln()).sum::<f64>();
    let dm = mean - prior.mean;
    let kl = 0.5 * ((prior_precision * cov).trace() + dm.dot(&(prior_precision * dm)) - D as f64 + prior_ln_det - ln_det_cov);
    let e: f64 = nodes.iter().map(|n| n.weight * model.log_likelihood(&(mean + l * n.point))).sum();
    let j = kl - e;
    if j.is_finite() {
        j
    } else {
        f64::INFINITY
    }
}

/// Nelder–Mead minimisation of `f` from `x0` with initial simplex size `scale`.
pub fn nelder_mead(f: &dyn Fn(&DVector<f64>) -> f64, x0: &DVector<f64>, scale: f64, max_evals: usize, tol: f64) -> (DVector<f64>, f64) {
    let n = x0.len();
    let mut simplex: Vec<(DVector<f64>, f64)> = Vec::with_capacity(n + 1);
    simplex.push((x0.clone(), f(x0)));
    for i in 0..n {
        let mut x = x0.clone();
        x[i] += scale;
        let v = f(&x);
        simplex.push((x, v));
    }
    let mut evals = n + 1;
    while evals < max_evals {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        if (simplex[n].1 - simplex[0].1).abs() <= tol * (1.0 + simplex[0].1.abs()) {
            let spread = simplex.iter().map(|s| (&s.0 - &simplex[0].0).amax()).fold(0.0, f64::max);
            if spread < 1e-9 {
                break;
            }
        }
        let centroid = simplex[..n].iter().fold(DVector::zeros(n), |acc, s| acc + &s.0) / n as f64;
        let worst = simplex[n].clone();
        let reflect = &centroid + (&centroid - &worst.0);
        let fr = f(&reflect);
        evals += 1;
        if fr < simplex[0].1 {
            let expand = &centroid + (&reflect - &centroid) * 2.0;
            let fe = f(&expand);
            evals += 1;
            simplex[n] = if fe < fr { (expand, fe) } else { (reflect, fr) };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (reflect, fr);
        } else {
            let contract = if fr < worst.1 {
                &centroid + (&reflect - &centroid) * 0.5
            } else {
                &centroid + (&worst.0 - &centroid) * 0.5
            };
            let fc = f(&contract);
            evals += 1;
            if fc < worst.1.min(fr) {
                simplex[n] = (contract, fc);
            } else {
                let best = simplex[0].0.clone();
                for s in simplex.iter_mut().skip(1) {
                    s.0 = &best + (&s.0 - &best) * 0.5;
                    s.1 = f(&s.0);
                    evals += 1;
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    simplex.swap_remove(0)
}

/// The KL-optimal Gaussian approximation of p(s|z) ∝ prior(s) p(z|s), with a
/// `points_per_axis`ᴰ Gauss–Hermite rule and Nelder–Mead restarted from the prior and
/// from the prior mean shifted by ±2 standard deviations along each axis.
///
/// # Errors
/// `NotPositiveDefinite` when the prior or the optimum is not SPD.
pub fn kl_optimal_gaussian<const D: usize, M: MeasurementModel<D>>(
    prior: &GaussianBelief<D>,
    model: &M,
    points_per_axis: usize,
) -> Result<KlOptimum<D>, EstimatorError> {
    let chol = prior.cholesky()?;
    let precision = symmetrise(&chol.solve(&SMatrix::identity()));
    let prior_ln_det = ln_det(&chol);
    let nodes = gauss_hermite_nodes::<D>(points_per_axis);
    let f = |x: &DVector<f64>| objective(prior, &precision, prior_ln_det, model, &nodes, x);
    let l0 = chol.l();
    let params = D + D * (D + 1) / 2;
    let pack = |mean: SVector<f64, D>, l: SMatrix<f64, D, D>| {
        let mut x = DVector::zeros(params);
        for i in 0..D {
            x[i] = mean[i];
        }
        let mut k = D;
        for i in 0..D {
            for j in 0..=i {
                x[k] = if i == j { l[(i, j)].ln() } else { l[(i, j)] };
                k += 1;
            }
        }
        x
    };
    let mut starts = vec![pack(prior.mean, l0)];
    for axis in 0..D {
        for sign in [-2.0, 2.0] {
            starts.push(pack(prior.mean + l0.column(axis) * sign, l0 * 0.5));
        }
    }
    let mut best: Option<(DVector<f64>, f64)> = None;
    for x0 in starts {
        let (mut x, mut v) = nelder_mead(&f, &x0, 0.5, 20_000, 1e-15);
        // Restart from the optimum with a fresh, small simplex to polish it.
        for _ in 0..3 {
            let (x2, v2) = nelder_mead(&f, &x, 0.05, 20_000, 1e-15);
            x = x2;
            v = v2;
        }
        if best.as_ref().is_none_or(|b| v < b.1) {
            best = Some((x, v));
        }
    }
    let (x, v) = best.expect("at least one start");
    let (mean, l) = unpack::<D>(&x);
    Ok(KlOptimum { belief: GaussianBelief::new(mean, symmetrise(&(l * l.transpose())))?, objective: v })
}
