//! The sensor's pooled range calibration (s, b) kept as running sums (issue 14).
//!
//! [`crate::estimator::pool_calibration`] is Λ = Λ₀ + Σᵢ Λᵢ, η = η₀ + Σᵢ ηᵢ over the
//! landmarks' sites ([`CalibrationSite`]). A range changes one landmark's site, so the
//! pool keeps every site and the two sums: replacing a site subtracts the old one and
//! adds the new (O(1) in the number of landmarks L), and a cavity (the pool without one
//! landmark) is the sums minus that site.
//!
//! Drift: add-then-subtract in floating point leaves a round-off residue of order
//! ε·max‖site‖ per replacement, which would accumulate as a random walk over a long
//! mission. Every [`EXACT_EVERY`] replacements the sums are recomputed from the stored
//! sites (O(L), so O(L / EXACT_EVERY) amortised per range: 1 per range at L = 1 000),
//! which bounds the residue to that of EXACT_EVERY replacements.

use std::collections::BTreeMap;

use nalgebra::{Matrix2, Vector2};

use crate::estimator::{calibration_information, pooled_from_information, CalibrationSite, EstimatorError, GaussianBelief};

/// Replacements between two exact recomputations of the sums.
pub(crate) const EXACT_EVERY: u32 = 1000;

/// The prior's information, every landmark's site and their running sums.
#[derive(Debug, Clone)]
pub(crate) struct CalibrationPool {
    prior_precision: Matrix2<f64>,
    prior_info: Vector2<f64>,
    sites: BTreeMap<String, CalibrationSite>,
    precision_sum: Matrix2<f64>,
    info_sum: Vector2<f64>,
    since_exact: u32,
}

impl CalibrationPool {
    /// An empty pool (no landmark) with the calibration prior `prior`.
    ///
    /// # Errors
    /// `NotPositiveDefinite` when the prior covariance has no Cholesky factor.
    pub(crate) fn new(prior: &GaussianBelief<2>) -> Result<Self, EstimatorError> {
        let (prior_precision, prior_info) = calibration_information(prior)?;
        Ok(Self {
            prior_precision,
            prior_info,
            sites: BTreeMap::new(),
            precision_sum: Matrix2::zeros(),
            info_sum: Vector2::zeros(),
            since_exact: 0,
        })
    }

    /// Landmark `id`'s site becomes `site` (`None`: it has none, e.g. not calibrated).
    pub(crate) fn set(&mut self, id: &str, site: Option<CalibrationSite>) {
        let old = match site {
            Some(site) => self.sites.insert(id.to_string(), site),
            None => self.sites.remove(id),
        };
        if let Some(old) = old {
            self.precision_sum -= old.precision;
            self.info_sum -= old.info;
        }
        if let Some(site) = site {
            self.precision_sum += site.precision;
            self.info_sum += site.info;
        }
        self.since_exact += 1;
        if self.since_exact >= EXACT_EVERY {
            self.recompute();
        }
    }

    /// The sums recomputed from the stored sites.
    fn recompute(&mut self) {
        self.precision_sum = Matrix2::zeros();
        self.info_sum = Vector2::zeros();
        for site in self.sites.values() {
            self.precision_sum += site.precision;
            self.info_sum += site.info;
        }
        self.since_exact = 0;
    }

    /// The pooled belief: N(Λ⁻¹η, Λ⁻¹) with Λ = Λ₀ + ΣΛᵢ, η = η₀ + Σηᵢ.
    ///
    /// # Errors
    /// `NotPositiveDefinite` when Λ has no Cholesky factor or the result is not
    /// publishable.
    pub(crate) fn pooled(&self) -> Result<GaussianBelief<2>, EstimatorError> {
        pooled_from_information(&(self.prior_precision + self.precision_sum), &(self.prior_info + self.info_sum))
    }

    /// The pool without landmark `id`'s site (its cavity).
    ///
    /// # Errors
    /// As [`CalibrationPool::pooled`].
    pub(crate) fn cavity(&self, id: &str) -> Result<GaussianBelief<2>, EstimatorError> {
        let (mut precision, mut info) = (self.prior_precision + self.precision_sum, self.prior_info + self.info_sum);
        if let Some(site) = self.sites.get(id) {
            precision -= site.precision;
            info -= site.info;
        }
        pooled_from_information(&precision, &info)
    }
}
