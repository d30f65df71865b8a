//! Gaussian belief N(μ, Σ) over the landmark position and the linear algebra it needs.

use nalgebra::{Cholesky, Const, SMatrix, SVector};

use super::error::{fmt_matrix, EstimatorError};

/// A Gaussian belief N(μ, Σ) over the landmark position s ∈ ℝᴰ.
///
/// `mean` is μ in metres, `cov` is Σ in m². A belief built through [`GaussianBelief::new`]
/// is finite and symmetric positive definite ([`GaussianBelief::is_publishable`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaussianBelief<const D: usize> {
    /// μ, metres.
    pub mean: SVector<f64, D>,
    /// Σ, m².
    pub cov: SMatrix<f64, D, D>,
}

/// Relative asymmetry |Σ − Σᵀ|_max / |Σ|_max accepted as "symmetric".
const SYMMETRY_TOLERANCE: f64 = 1e-9;

impl<const D: usize> GaussianBelief<D> {
    /// Builds N(mean, cov) after checking it is finite and SPD.
    ///
    /// # Errors
    /// `NonFinite` for a non-finite mean, `NotPositiveDefinite` for a covariance that is
    /// not finite, not symmetric (relative 1e-9) or not positive definite.
    pub fn new(mean: SVector<f64, D>, cov: SMatrix<f64, D, D>) -> Result<Self, EstimatorError> {
        let belief = Self { mean, cov };
        if !mean.iter().all(|v| v.is_finite()) {
            return Err(EstimatorError::NonFinite {
                quantity: "mean",
                value: format!("{:?}", mean.as_slice()),
            });
        }
        if !belief.is_publishable() {
            return Err(EstimatorError::NotPositiveDefinite {
                quantity: "cov",
                value: fmt_matrix(&cov),
            });
        }
        Ok(belief)
    }

    /// True when μ and Σ are finite, Σ is symmetric and Σ has a Cholesky factor with
    /// positive pivots: the one test that decides whether a belief may be published.
    pub fn is_publishable(&self) -> bool {
        if !self.mean.iter().chain(self.cov.iter()).all(|v| v.is_finite()) {
            return false;
        }
        let scale = self.cov.amax();
        if scale <= 0.0 || (self.cov - self.cov.transpose()).amax() > SYMMETRY_TOLERANCE * scale {
            return false;
        }
        match Cholesky::new(self.cov) {
            Some(chol) => chol.l().diagonal().iter().all(|&p| p > 0.0 && p.is_finite()),
            None => false,
        }
    }

    /// Cholesky factor Σ = L Lᵀ.
    ///
    /// # Errors
    /// `NotPositiveDefinite` when Σ has no Cholesky factor.
    pub fn cholesky(&self) -> Result<Cholesky<f64, Const<D>>, EstimatorError> {
        cholesky(&self.cov, "cov")
    }

    /// Precision Λ = Σ⁻¹, by Cholesky solve.
    ///
    /// # Errors
    /// `NotPositiveDefinite` when Σ has no Cholesky factor.
    pub fn precision(&self) -> Result<SMatrix<f64, D, D>, EstimatorError> {
        Ok(symmetrise(&self.cholesky()?.solve(&SMatrix::identity())))
    }

    /// ln N(s; μ, Σ) = −½ (s−μ)ᵀ Σ⁻¹ (s−μ) − ½ ln det(2πΣ).
    ///
    /// # Errors
    /// `NotPositiveDefinite` when Σ has no Cholesky factor.
    pub fn log_density(&self, s: &SVector<f64, D>) -> Result<f64, EstimatorError> {
        let chol = self.cholesky()?;
        Ok(log_density_with(&chol, &self.mean, s))
    }

    /// KL(self ‖ other) = ½[tr(Σ₁⁻¹Σ₀) + (μ₁−μ₀)ᵀΣ₁⁻¹(μ₁−μ₀) − D + ln det Σ₁ − ln det Σ₀], nats.
    ///
    /// # Errors
    /// `NotPositiveDefinite` when either covariance has no Cholesky factor.
    pub fn kl_divergence(&self, other: &GaussianBelief<D>) -> Result<f64, EstimatorError> {
        let c0 = self.cholesky()?;
        let c1 = other.cholesky()?;
        let dm = other.mean - self.mean;
        let trace = c1.solve(&self.cov).trace();
        let maha = dm.dot(&c1.solve(&dm));
        Ok(0.5 * (trace + maha - D as f64 + ln_det(&c1) - ln_det(&c0)))
    }

    /// Squared Mahalanobis distance (s−μ)ᵀ Σ⁻¹ (s−μ); the NEES when s is the truth.
    ///
    /// # Errors
    /// `NotPositiveDefinite` when Σ has no Cholesky factor.
    pub fn mahalanobis_squared(&self, s: &SVector<f64, D>) -> Result<f64, EstimatorError> {
        let d = s - self.mean;
        Ok(d.dot(&self.cholesky()?.solve(&d)))
    }
}

/// (M + Mᵀ)/2.
pub(crate) fn symmetrise<const D: usize>(m: &SMatrix<f64, D, D>) -> SMatrix<f64, D, D> {
    (m + m.transpose()) * 0.5
}

/// Cholesky factor of `m` or a `NotPositiveDefinite` error naming `quantity`.
pub(crate) fn cholesky<const D: usize>(
    m: &SMatrix<f64, D, D>,
    quantity: &'static str,
) -> Result<Cholesky<f64, Const<D>>, EstimatorError> {
    let err = || EstimatorError::NotPositiveDefinite { quantity, value: fmt_matrix(m) };
    if !m.iter().all(|v| v.is_finite()) {
        return Err(err());
    }
    let chol = Cholesky::new(*m).ok_or_else(err)?;
    if chol.l().diagonal().iter().all(|&p| p > 0.0 && p.is_finite()) {
        Ok(chol)
    } else {
        Err(err())
    }
}

/// ln det M from its Cholesky factor: 2 Σ ln Lᵢᵢ.
pub(crate) fn ln_det<const D: usize>(chol: &Cholesky<f64, Const<D>>) -> f64 {
    2.0 * chol.l().diagonal().iter().map(|p| p.ln()).sum::<f64>()
}

/// ln N(s; μ, Σ) given the Cholesky factor of Σ.
pub(crate) fn log_density_with<const D: usize>(
    chol: &Cholesky<f64, Const<D>>,
    mean: &SVector<f64, D>,
    s: &SVector<f64, D>,
) -> f64 {
    let d = s - mean;
    let z = chol.l().solve_lower_triangular(&d).unwrap_or(d);
    -0.5 * z.norm_squared() - 0.5 * (D as f64) * (2.0 * std::f64::consts::PI).ln() - 0.5 * ln_det(chol)
}

/// Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations.
///
/// Returns (eigenvalues, eigenvectors as columns). Used for split directions and for
/// checks; D ≤ 3 so a handful of sweeps reach machine precision.
pub fn symmetric_eigen<const D: usize>(m: &SMatrix<f64, D, D>) -> (SVector<f64, D>, SMatrix<f64, D, D>) {
    let mut a = symmetrise(m);
    let mut v = SMatrix::<f64, D, D>::identity();
    for _sweep in 0..50 {
        let mut off = 0.0;
        for p in 0..D {
            for q in (p + 1)..D {
                off += a[(p, q)] * a[(p, q)];
            }
        }
        if off <= 1e-30 * (1.0 + a.norm_squared()) {
            break;
        }
        for p in 0..D {
            for q in (p + 1)..D {
                if a[(p, q)] == 0.0 {
                    continue;
                }
                let theta = (a[(q, q)] - a[(p, p)]) / (2.0 * a[(p, q)]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..D {
                    let akp = a[(k, p)];
                    let akq = a[(k, q)];
                    a[(k, p)] = c * akp - s * akq;
                    a[(k, q)] = s * akp + c * akq;
                }
                for k in 0..D {
                    let apk = a[(p, k)];
                    let aqk = a[(q, k)];
                    a[(p, k)] = c * apk - s * aqk;
                    a[(q, k)] = s * apk + c * aqk;
                }
                for k in 0..D {
                    let vkp = v[(k, p)];
                    let vkq = v[(k, q)];
                    v[(k, p)] = c * vkp - s * vkq;
                    v[(k, q)] = s * vkp + c * vkq;
                }
            }
        }
    }
    (a.diagonal(), v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Matrix2, Matrix3, Vector2};

    #[test]
    fn jacobi_eigen_reconstructs_matrix() {
        let m = Matrix3::new(4.0, 1.0, -2.0, 1.0, 3.0, 0.5, -2.0, 0.5, 5.0);
        let (vals, vecs) = symmetric_eigen(&m);
        let rebuilt = vecs * SMatrix::from_diagonal(&vals) * vecs.transpose();
        assert!((rebuilt - m).amax() < 1e-12);
    }

    #[test]
    fn publishable_rejects_nan_and_indefinite() {
        let ok = GaussianBelief::new(Vector2::new(1.0, 1.0), Matrix2::new(5.5, -1.5, -1.5, 5.5));
        assert!(ok.is_ok());
        assert!(GaussianBelief::new(Vector2::new(f64::NAN, 0.0), Matrix2::identity()).is_err());
        assert!(GaussianBelief::new(Vector2::zeros(), Matrix2::new(1.0, 2.0, 2.0, 1.0)).is_err());
        assert!(GaussianBelief::new(Vector2::zeros(), Matrix2::new(1.0, 0.5, 0.4, 1.0)).is_err());
    }

    #[test]
    fn kl_of_gaussians_matches_closed_form_1d_like_case() {
        let a = GaussianBelief::new(Vector2::new(0.0, 0.0), Matrix2::identity()).unwrap();
        let b = GaussianBelief::new(Vector2::new(1.0, 0.0), Matrix2::identity() * 2.0).unwrap();
        // per axis: ½[σ0²/σ1² + (Δμ)²/σ1² − 1 + ln(σ1²/σ0²)]
        let expected = 0.5 * (0.5 + 0.5 - 1.0 + 2f64.ln()) + 0.5 * (0.5 - 1.0 + 2f64.ln());
        assert!((a.kl_divergence(&b).unwrap() - expected).abs() < 1e-14);
    }
}
