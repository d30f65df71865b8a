//! Kalman baselines for a scalar measurement z = h(s) + w, R = the noise's equivalent
//! variance (σ² for Gaussian noise).

use nalgebra::{SMatrix, SVector};

use super::belief::{symmetrise, GaussianBelief};
use crate::config::ConfigError;
use super::error::EstimatorError;
use super::model::{MeasurementModel, ScalarNoise};

fn checked<const D: usize>(belief: GaussianBelief<D>) -> Result<GaussianBelief<D>, EstimatorError> {
    GaussianBelief::new(belief.mean, symmetrise(&belief.cov))
}

/// Extended Kalman filter update, linearised at μ: H = ∇h(μ)ᵀ, S = HΣHᵀ + R,
/// K = ΣHᵀ/S, μ' = μ + K(z − h(μ)), Σ' = (I − KH)Σ(I − KH)ᵀ + KRKᵀ (Joseph form,
/// SPD for any K). At d(μ) → 0, ∇h = 0 and the update leaves the belief unchanged.
///
/// # Errors
/// `NotPositiveDefinite` when the prior or the result is not SPD.
pub fn ekf_update<const D: usize, M: MeasurementModel<D>>(
    prior: &GaussianBelief<D>,
    model: &M,
) -> Result<GaussianBelief<D>, EstimatorError> {
    prior.cholesky()?;
    let (h, jac) = model.predict(&prior.mean);
    let r = model.noise().equivalent_variance();
    let pht = prior.cov * jac;
    let s = jac.dot(&pht) + r;
    let gain = pht / s;
    let mean = prior.mean + gain * (model.measurement() - h);
    let ikh = SMatrix::<f64, D, D>::identity() - gain * jac.transpose();
    let cov = ikh * prior.cov * ikh.transpose() + gain * gain.transpose() * r;
    checked(GaussianBelief { mean, cov })
}

/// ln p(z) under the linearised predictive of z = h(s) + w, s ~ N(μ, Σ): the noise
/// density with its variance widened by the prior's spread along ∇h, evaluated at the
/// residual z − h(μ). With H = ∇h(μ)ᵀ, R the noise's equivalent variance and
/// σ² its scale², the widened scale² is σ²·(1 + HΣHᵀ/R) (σ² + HΣHᵀ for Gaussian and
/// Huber noise); the shape (Huber threshold in σ, Student-t ν) is kept. Exact for a
/// linear h with Gaussian noise (the Kalman filter's innovation density). Used to
/// weigh models against each other, so only differences between calls matter (the
/// Huber density's unnormalised constant cancels).
///
/// # Errors
/// `InvalidNoiseVariance` when the widened variance is not finite and > 0.
pub fn predictive_log_density<const D: usize, M: MeasurementModel<D>>(
    prior: &GaussianBelief<D>,
    model: &M,
) -> Result<f64, EstimatorError> {
    let (h, jac) = model.predict(&prior.mean);
    let noise = model.noise();
    let spread = jac.dot(&(prior.cov * jac)).max(0.0);
    let widened = ScalarNoise::new(noise.shape, noise.var * (1.0 + spread / noise.equivalent_variance()))?;
    Ok(widened.log_density_derivatives(model.measurement() - h).0)
}

/// Largest state dimension of [`ukf_update`] (the sigma points live on the stack).
pub const UKF_MAX_DIMENSION: usize = 4;

/// Unscented Kalman filter update with 2D+1 sigma points μ, μ ± √(D+κ) Lᵢ (Σ = LLᵀ),
/// κ = max(3 − D, 0) (so every weight is ≥ 0 and Σ' stays SPD; D = 4, the calibrated
/// state, has κ = 0 and no weight on μ):
/// ẑ = Σ Wᵢ h(χᵢ), S = Σ Wᵢ(h(χᵢ) − ẑ)² + R, C = Σ Wᵢ(χᵢ − μ)(h(χᵢ) − ẑ),
/// μ' = μ + C(z − ẑ)/S, Σ' = Σ − CCᵀ/S.
///
/// # Errors
/// `NotPositiveDefinite` when the prior or the result is not SPD; `Config` naming
/// `dimension` for D > [`UKF_MAX_DIMENSION`].
pub fn ukf_update<const D: usize, M: MeasurementModel<D>>(
    prior: &GaussianBelief<D>,
    model: &M,
) -> Result<GaussianBelief<D>, EstimatorError> {
    if D > UKF_MAX_DIMENSION {
        return Err(EstimatorError::Config(ConfigError::invalid("dimension", D, "at most 4 for the UKF")));
    }
    let l = prior.cholesky()?.l();
    let kappa = (3.0 - D as f64).max(0.0);
    let scale = (D as f64 + kappa).sqrt();
    let w0 = kappa / (D as f64 + kappa);
    let wi = 0.5 / (D as f64 + kappa);
    let h0 = model.predict(&prior.mean).0;
    let mut z_pred = w0 * h0;
    let mut points = [(SVector::<f64, D>::zeros(), 0.0); 2 * UKF_MAX_DIMENSION];
    for i in 0..D {
        for (k, sign) in [1.0, -1.0].into_iter().enumerate() {
            let offset = l.column(i) * (sign * scale);
            let z = model.predict(&(prior.mean + offset)).0;
            points[2 * i + k] = (offset, z);
            z_pred += wi * z;
        }
    }
    let mut s = w0 * (h0 - z_pred).powi(2) + model.noise().equivalent_variance();
    let mut c = SVector::<f64, D>::zeros();
    for &(offset, z) in points.iter().take(2 * D) {
        s += wi * (z - z_pred).powi(2);
        c += offset * (wi * (z - z_pred));
    }
    let mean = prior.mean + c * ((model.measurement() - z_pred) / s);
    let cov = prior.cov - c * c.transpose() / s;
    checked(GaussianBelief { mean, cov })
}
