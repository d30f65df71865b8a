//! Gaussian algebra of the range calibration c = (s, b) of [`CalibratedRange`]
//! inside a landmark's calibrated state θ = (y, s, b), y ∈ ℝᴾ (P = 2 planar, P = 3 for
//! 3-D landmarks), D = P + 2: the marginals, the joint prior, conditioning the position
//! on a calibration belief, swapping the calibration prior of a belief, and pooling
//! (s, b) over landmarks (expectation propagation). A 2-D and a 3-D landmark send the
//! same kind of message about c, so one sensor's pool may hold both.
//!
//! Every inverse is a Cholesky solve ([`nalgebra::Cholesky::solve`]); a covariance or
//! precision without a Cholesky factor is [`EstimatorError::NotPositiveDefinite`]
//! naming the matrix. Results are symmetrised and must be publishable (finite, SPD).
//!
//! Blocks of θ: y = θ[0..P] (metres), c = θ[P..P+2] (s dimensionless, b metres): the
//! calibration is always the last two coordinates, so the functions that only read c
//! are generic over D alone, and those that also read y take P and D, checked at
//! compile time to satisfy D = P + 2 ([`CalibratedLayout`]). A future joint state
//! (e.g. a robot-pose error e appended as θ = (y, c, e)) would keep these functions:
//! they only read the y and c blocks, so `position_offset` and
//! `calibration_offset` are the one place to change.
//!
//! [`CalibratedRange`]: super::CalibratedRange

use nalgebra::{Matrix2, SMatrix, SVector, Vector2};

use super::belief::{cholesky, symmetric_eigen, symmetrise, GaussianBelief};
use super::error::{fmt_matrix, EstimatorError};
use super::initialisation::CalibrationPrior;
use super::model::CalibratedLayout;

/// Offset of the position block y in θ.
const fn position_offset() -> usize {
    0
}

/// Offset of the calibration block c = (s, b) in a calibrated θ of dimension D: the
/// last two coordinates.
const fn calibration_offset<const D: usize>() -> usize {
    assert!(D >= 3, "a calibrated state is θ = (y, s, b) with y at least 1-D");
    D - 2
}

impl CalibrationPrior {
    /// The prior as a Gaussian over c = (s, b): N((s₀, b₀), diag(σ_s², σ_b²)).
    /// Not SPD for [`CalibrationPrior::EXACT`] (zero variances).
    pub fn belief(&self) -> GaussianBelief<2> {
        GaussianBelief {
            mean: Vector2::new(self.scale, self.offset_m),
            cov: Matrix2::new(self.scale_std * self.scale_std, 0.0, 0.0, self.offset_std_m * self.offset_std_m),
        }
    }
}

/// The position marginal of a Gaussian over θ = (y, c), y ∈ ℝᴾ: N(μ_y, Σ_yy).
pub fn position_marginal<const P: usize, const D: usize>(b: &GaussianBelief<D>) -> GaussianBelief<P> {
    let () = CalibratedLayout::<P, D>::CHECK;
    GaussianBelief {
        mean: b.mean.fixed_rows::<P>(position_offset()).into(),
        cov: b.cov.fixed_view::<P, P>(position_offset(), position_offset()).into(),
    }
}

/// The (s, b) marginal of a Gaussian over θ = (y, c): N(μ_c, Σ_cc).
pub fn calibration_marginal<const D: usize>(b: &GaussianBelief<D>) -> GaussianBelief<2> {
    let c = const { calibration_offset::<D>() };
    GaussianBelief { mean: b.mean.fixed_rows::<2>(c).into(), cov: b.cov.fixed_view::<2, 2>(c, c).into() }
}

/// N(position) × N(calibration) over θ = (y, c): independent blocks.
pub fn joint_prior<const P: usize, const D: usize>(
    position: &GaussianBelief<P>,
    calibration: &GaussianBelief<2>,
) -> GaussianBelief<D> {
    let () = CalibratedLayout::<P, D>::CHECK;
    let c = const { calibration_offset::<D>() };
    let mut cov = SMatrix::<f64, D, D>::zeros();
    cov.fixed_view_mut::<P, P>(position_offset(), position_offset()).copy_from(&position.cov);
    cov.fixed_view_mut::<2, 2>(c, c).copy_from(&calibration.cov);
    let mut mean = SVector::<f64, D>::zeros();
    mean.fixed_rows_mut::<P>(position_offset()).copy_from(&position.mean);
    mean.fixed_rows_mut::<2>(c).copy_from(&calibration.mean);
    GaussianBelief { mean, cov }
}

/// Λ = Σ⁻¹ and η = Λμ of a belief, by one Cholesky factorisation of Σ.
fn information<const D: usize>(
    b: &GaussianBelief<D>,
    quantity: &'static str,
) -> Result<(SMatrix<f64, D, D>, SVector<f64, D>), EstimatorError> {
    let chol = cholesky(&b.cov, quantity)?;
    Ok((symmetrise(&chol.solve(&SMatrix::identity())), chol.solve(&b.mean)))
}

/// N(Λ⁻¹η, Λ⁻¹) from information form, by one Cholesky factorisation of Λ; the result
/// must be publishable.
fn from_information<const D: usize>(
    precision: &SMatrix<f64, D, D>,
    info: &SVector<f64, D>,
    quantity: &'static str,
) -> Result<GaussianBelief<D>, EstimatorError> {
    let chol = cholesky(precision, quantity)?;
    let cov = symmetrise(&chol.solve(&SMatrix::identity()));
    publishable(GaussianBelief { mean: chol.solve(info), cov }, quantity)
}

fn publishable<const D: usize>(b: GaussianBelief<D>, quantity: &'static str) -> Result<GaussianBelief<D>, EstimatorError> {
    if b.is_publishable() {
        Ok(b)
    } else {
        Err(EstimatorError::NotPositiveDefinite { quantity, value: fmt_matrix(&b.cov) })
    }
}

/// The sensor's calibration c = (s, b) from every landmark's own posterior.
///
/// Landmark i's belief N(θᵢ) over (yᵢ, c) is its own ranges Zᵢ times a belief qᵢ(c)
/// (its "cavity": the prior p(c), or what the other landmarks knew of c when it was
/// last re-solved); the landmarks are independent given c, so its message about c is
/// p(c | θᵢ's data)/qᵢ(c) and p(c | Z) ∝ p(c) Πᵢ N(c; θᵢ)/qᵢ(c) (expectation
/// propagation's fixed point; exact for linear-Gaussian models). In information form,
/// with Λᵢ, ηᵢ = Λᵢ mᵢ of the (s, b) marginal of landmark i and Λ_qᵢ, η_qᵢ of its
/// cavity: Λ = Λ₀ + Σᵢ (Λᵢ − Λ_qᵢ), η = η₀ + Σᵢ (ηᵢ − η_qᵢ) (each message's
/// precision clipped to be PSD, its information left as is). `landmarks` holds
/// (belief over θᵢ, cavity qᵢ) pairs.
///
/// # Errors
/// `NotPositiveDefinite` naming the prior, a landmark's calibration marginal, a cavity
/// or the pooled precision when it has no Cholesky factor, or a pooled belief that is
/// not publishable.
pub fn pool_calibration<const D: usize>(
    prior: &GaussianBelief<2>,
    landmarks: &[(GaussianBelief<D>, GaussianBelief<2>)],
) -> Result<GaussianBelief<2>, EstimatorError> {
    let (mut precision, mut info) = calibration_information(prior)?;
    for (b, cavity) in landmarks {
        let site = calibration_site(b, cavity)?;
        precision += site.precision;
        info += site.info;
    }
    pooled_from_information(&precision, &info)
}

/// One landmark's message about c = (s, b) in information form (its EP "site"):
/// Λ = Λᵢ − Λ_qᵢ clipped to be PSD (negative eigenvalues set to 0), η = ηᵢ − η_qᵢ
/// ([`pool_calibration`]). The pooled belief is the prior's information plus the sum
/// of the sites, so a pool can be kept as running sums ([`crate::localizer`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationSite {
    /// Λ, the site's precision over (s, b).
    pub precision: Matrix2<f64>,
    /// η, the site's information vector.
    pub info: Vector2<f64>,
}

/// The site of a landmark with belief `b` over θ = (y, c) and cavity `cavity`
/// ([`CalibrationSite`]).
///
/// # Errors
/// `NotPositiveDefinite` naming the landmark's calibration marginal or the cavity when
/// it has no Cholesky factor.
pub fn calibration_site<const D: usize>(b: &GaussianBelief<D>, cavity: &GaussianBelief<2>) -> Result<CalibrationSite, EstimatorError> {
    let (lambda, eta) = information(&calibration_marginal(b), "landmark calibration covariance")?;
    let (cavity_precision, cavity_info) = information(cavity, "calibration cavity covariance")?;
    let (values, vectors) = symmetric_eigen(&(lambda - cavity_precision));
    Ok(CalibrationSite {
        precision: vectors * Matrix2::from_diagonal(&values.map(|v| v.max(0.0))) * vectors.transpose(),
        info: eta - cavity_info,
    })
}

/// Λ = Σ⁻¹, η = Λμ of a calibration belief (the prior of a pool).
///
/// # Errors
/// `NotPositiveDefinite` when its covariance has no Cholesky factor.
pub fn calibration_information(prior: &GaussianBelief<2>) -> Result<(Matrix2<f64>, Vector2<f64>), EstimatorError> {
    information(prior, "calibration prior covariance")
}

/// N(Λ⁻¹η, Λ⁻¹) of a pooled calibration in information form.
///
/// # Errors
/// `NotPositiveDefinite` when Λ has no Cholesky factor or the belief is not publishable.
pub fn pooled_from_information(precision: &Matrix2<f64>, info: &Vector2<f64>) -> Result<GaussianBelief<2>, EstimatorError> {
    from_information(precision, info, "pooled calibration precision")
}

/// `anchor` over θ = (y, c) with its belief `old` about c swapped for `new`:
/// anchor × N(c; new)/N(c; old), in information form (Λ_cc += Λ_new − Λ_old,
/// η_c += η_new − η_old), the form in which a factor over a block is a sum.
///
/// # Errors
/// `NotPositiveDefinite` naming the matrix without a Cholesky factor, or a result that
/// is not publishable.
pub fn replace_calibration_prior<const D: usize>(
    anchor: &GaussianBelief<D>,
    old: &GaussianBelief<2>,
    new: &GaussianBelief<2>,
) -> Result<GaussianBelief<D>, EstimatorError> {
    let c = const { calibration_offset::<D>() };
    let (mut precision, mut info) = information(anchor, "anchor covariance")?;
    let (old_precision, old_info) = information(old, "replaced calibration covariance")?;
    let (new_precision, new_info) = information(new, "new calibration covariance")?;
    let mut block = precision.fixed_view_mut::<2, 2>(c, c);
    block += new_precision - old_precision;
    let mut tail = info.fixed_rows_mut::<2>(c);
    tail += new_info - old_info;
    from_information(&precision, &info, "anchor precision with the new calibration")
}

/// The position of a Gaussian over θ = (y, c) once c's belief N(m, P) replaces its own.
/// Covariance form: y | c is N(μ_y + K(c − μ_c), Σ_yy − KΣ_cy) with K = Σ_yc Σ_cc⁻¹
/// (Kᵀ = Σ_cc⁻¹ Σ_cy by a Cholesky solve), so
/// y ~ N(μ_y + K(m − μ_c), Σ_yy − KΣ_cy + KPKᵀ).
///
/// # Errors
/// `NotPositiveDefinite` when Σ_cc has no Cholesky factor or the result is not
/// publishable.
pub fn condition_position<const P: usize, const D: usize>(
    b: &GaussianBelief<D>,
    calibration: &GaussianBelief<2>,
) -> Result<GaussianBelief<P>, EstimatorError> {
    let own = calibration_marginal(b);
    let position = position_marginal::<P, D>(b);
    let cross_cy: SMatrix<f64, 2, P> = b.cov.fixed_view::<2, P>(const { calibration_offset::<D>() }, position_offset()).into();
    let k = cholesky(&own.cov, "calibration marginal covariance")?.solve(&cross_cy).transpose();
    let cov = position.cov - k * cross_cy + k * calibration.cov * k.transpose();
    let mean = position.mean + k * (calibration.mean - own.mean);
    publishable(GaussianBelief { mean, cov: symmetrise(&cov) }, "calibration-conditioned position covariance")
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Matrix3, Matrix4, RowVector4, Vector3, Vector4};

    fn spd4() -> Matrix4<f64> {
        let a = Matrix4::new(
            1.0, 0.3, -0.2, 0.1, //
            0.0, 1.5, 0.4, -0.3, //
            0.2, 0.0, 0.2, 0.05, //
            -0.1, 0.3, 0.0, 0.8,
        );
        a * a.transpose() + Matrix4::identity() * 0.05
    }

    fn belief4() -> GaussianBelief<4> {
        GaussianBelief::new(Vector4::new(3.0, -1.0, 1.05, 0.3), spd4()).unwrap()
    }

    /// A linear Kalman update of θ with the scalar measurement z = hᵀθ + w, w ~ N(0, r),
    /// covariance form, independent of the information-form code under test.
    fn kalman(b: &GaussianBelief<4>, h: RowVector4<f64>, z: f64, r: f64) -> GaussianBelief<4> {
        let s = (h * b.cov * h.transpose())[(0, 0)] + r;
        let k = b.cov * h.transpose() / s;
        GaussianBelief { mean: b.mean + k * (z - (h * b.mean)[(0, 0)]), cov: b.cov - k * s * k.transpose() }
    }

    /// Conditioning on an exactly known c (P → 0) is the Kalman update with observations
    /// of s and of b with vanishing noise; a Gaussian P is the same update followed by
    /// adding K P Kᵀ (the law of total variance), checked here with P = the closed
    /// form Σ_yy − Σ_yc Σ_cc⁻¹ Σ_cy written out by hand for the 2×2 blocks.
    #[test]
    fn conditioning_matches_a_joint_kalman_filter_and_the_closed_form() {
        let b = belief4();
        let m = Vector2::new(1.1, 0.1);
        let exact = GaussianBelief { mean: m, cov: Matrix2::identity() * 1e-300 };
        let got = condition_position(&b, &exact).unwrap();
        let tiny = 1e-12;
        let kf = kalman(&kalman(&b, RowVector4::new(0.0, 0.0, 1.0, 0.0), m.x, tiny), RowVector4::new(0.0, 0.0, 0.0, 1.0), m.y, tiny);
        assert!((got.mean - kf.mean.fixed_rows::<2>(0)).amax() < 1e-9, "{} vs {}", got.mean, kf.mean);
        assert!((got.cov - kf.cov.fixed_view::<2, 2>(0, 0)).amax() < 1e-9, "{} vs {}", got.cov, kf.cov);
        // Hand-written 2×2 inverse of Σ_cc.
        let c = b.cov.fixed_view::<2, 2>(2, 2).into_owned();
        let det = c[(0, 0)] * c[(1, 1)] - c[(0, 1)] * c[(1, 0)];
        let c_inv = Matrix2::new(c[(1, 1)], -c[(0, 1)], -c[(1, 0)], c[(0, 0)]) / det;
        let yc: Matrix2<f64> = b.cov.fixed_view::<2, 2>(0, 2).into();
        let k = yc * c_inv;
        let p = Matrix2::new(0.01, 0.002, 0.002, 0.04);
        let with_p = condition_position(&b, &GaussianBelief { mean: m, cov: p }).unwrap();
        let expected_cov = b.cov.fixed_view::<2, 2>(0, 0) - k * yc.transpose() + k * p * k.transpose();
        let expected_mean = b.mean.fixed_rows::<2>(0) + k * (m - b.mean.fixed_rows::<2>(2));
        assert!((with_p.cov - expected_cov).amax() < 1e-12);
        assert!((with_p.mean - expected_mean).amax() < 1e-12);
        // c's own marginal as the new belief leaves the position marginal unchanged.
        let same = condition_position(&b, &calibration_marginal(&b)).unwrap();
        assert!((same.cov - position_marginal::<2, 4>(&b).cov).amax() < 1e-12);
        assert!((same.mean - position_marginal::<2, 4>(&b).mean).amax() < 1e-12);
    }

    /// Pooling two landmarks whose cavity is the prior: the product of the prior and
    /// each landmark's message N(c; mᵢ, Pᵢ)/N(c; prior), hand-computed for diagonal
    /// covariances (precisions add per axis): Λ = Λ₁ + Λ₂ − Λ₀, η likewise.
    #[test]
    fn pooling_is_the_product_of_the_messages_in_information_form() {
        let prior = GaussianBelief { mean: Vector2::new(1.0, 0.0), cov: Matrix2::new(0.04, 0.0, 0.0, 1.0) };
        let landmark = |s: f64, vs: f64, b: f64, vb: f64| -> GaussianBelief<4> {
            let position = GaussianBelief { mean: Vector2::new(5.0, 5.0), cov: Matrix2::identity() };
            joint_prior(&position, &GaussianBelief { mean: Vector2::new(s, b), cov: Matrix2::new(vs, 0.0, 0.0, vb) })
        };
        let l1 = landmark(1.05, 0.01, 0.5, 0.25);
        let l2 = landmark(1.10, 0.02, -0.2, 0.5);
        let pooled = pool_calibration(&prior, &[(l1, prior), (l2, prior)]).unwrap();
        let axis = |m0: f64, v0: f64, m1: f64, v1: f64, m2: f64, v2: f64| {
            let lambda = 1.0 / v1 + 1.0 / v2 - 1.0 / v0;
            let eta = m1 / v1 + m2 / v2 - m0 / v0;
            (eta / lambda, 1.0 / lambda)
        };
        let (ms, vs) = axis(1.0, 0.04, 1.05, 0.01, 1.10, 0.02);
        let (mb, vb) = axis(0.0, 1.0, 0.5, 0.25, -0.2, 0.5);
        assert!((pooled.mean - Vector2::new(ms, mb)).amax() < 1e-12, "{}", pooled.mean);
        assert!((pooled.cov - Matrix2::new(vs, 0.0, 0.0, vb)).amax() < 1e-12, "{}", pooled.cov);
        // No landmarks: the prior itself.
        let alone = pool_calibration::<4>(&prior, &[]).unwrap();
        assert!((alone.mean - prior.mean).amax() < 1e-15 && (alone.cov - prior.cov).amax() < 1e-15);
        // A landmark that knows less than its cavity sends no precision (clipped to 0).
        let vague = landmark(2.0, 1.0, 3.0, 4.0);
        let clipped = pool_calibration(&prior, &[(vague, prior)]).unwrap();
        assert!((clipped.cov - prior.cov).amax() < 1e-12, "{}", clipped.cov);
    }

    /// Swapping the calibration prior of a joint prior built from N(y) × N(c; old) gives
    /// N(y) × N(c; new), and in general agrees with a joint Kalman filter: a belief that
    /// saw a linear measurement of θ from N(y) × N(c; old), re-based on N(c; new), is
    /// the same measurement seen from N(y) × N(c; new).
    #[test]
    fn replacing_the_calibration_prior_matches_a_kalman_filter_from_the_new_prior() {
        let position = GaussianBelief { mean: Vector2::new(2.0, -3.0), cov: Matrix2::new(4.0, 0.5, 0.5, 2.0) };
        let old = GaussianBelief { mean: Vector2::new(1.0, 0.0), cov: Matrix2::new(0.01, 0.0, 0.0, 1.0) };
        let new = GaussianBelief { mean: Vector2::new(1.07, 0.4), cov: Matrix2::new(0.002, 0.0005, 0.0005, 0.3) };
        let swapped = replace_calibration_prior(&joint_prior(&position, &old), &old, &new).unwrap();
        let direct: GaussianBelief<4> = joint_prior(&position, &new);
        assert!((swapped.mean - direct.mean).amax() < 1e-12 && (swapped.cov - direct.cov).amax() < 1e-12);
        let h = RowVector4::new(0.6, -0.8, 7.0, 1.0);
        let seen_old = kalman(&joint_prior(&position, &old), h, 9.0, 0.25);
        let seen_new = kalman(&joint_prior(&position, &new), h, 9.0, 0.25);
        let got = replace_calibration_prior(&seen_old, &old, &new).unwrap();
        assert!((got.mean - seen_new.mean).amax() < 1e-9, "{} vs {}", got.mean, seen_new.mean);
        assert!((got.cov - seen_new.cov).amax() < 1e-9, "{} vs {}", got.cov, seen_new.cov);
    }

    fn spd5() -> SMatrix<f64, 5, 5> {
        let a = SMatrix::<f64, 5, 5>::from_row_slice(&[
            1.0, 0.3, -0.2, 0.1, 0.2, //
            0.0, 1.5, 0.4, -0.3, 0.0, //
            0.4, -0.1, 2.0, 0.05, -0.1, //
            0.2, 0.0, 0.1, 0.2, 0.05, //
            -0.1, 0.3, 0.2, 0.0, 0.8,
        ]);
        a * a.transpose() + SMatrix::<f64, 5, 5>::identity() * 0.05
    }

    fn belief5() -> GaussianBelief<5> {
        GaussianBelief::new(SVector::<f64, 5>::from_column_slice(&[3.0, -1.0, 2.5, 1.05, 0.3]), spd5()).unwrap()
    }

    /// The 3-D blocks: y = θ[0..3], c = θ[3..5]. The conditional written out with plain
    /// matrix inverses (`try_inverse`, no Cholesky): K = Σ_yc Σ_cc⁻¹,
    /// y ~ N(μ_y + K(m − μ_c), Σ_yy − KΣ_cy + KPKᵀ); and for an exactly known c the
    /// precision form of the Gaussian conditional, y | c = m ~ N(μ_y − Λ_yy⁻¹Λ_yc(m − μ_c),
    /// Λ_yy⁻¹) with Λ = Σ⁻¹ over all five coordinates, a different route to the same.
    #[test]
    fn three_d_blocks_and_conditioning_match_the_gaussian_conditional() {
        let b = belief5();
        let y = position_marginal::<3, 5>(&b);
        let c = calibration_marginal(&b);
        for i in 0..3 {
            assert_eq!(y.mean[i], b.mean[i]);
            for j in 0..3 {
                assert_eq!(y.cov[(i, j)], b.cov[(i, j)]);
            }
        }
        for i in 0..2 {
            assert_eq!(c.mean[i], b.mean[3 + i]);
            for j in 0..2 {
                assert_eq!(c.cov[(i, j)], b.cov[(3 + i, 3 + j)]);
            }
        }
        let joint: GaussianBelief<5> = joint_prior(&y, &c);
        assert_eq!(position_marginal::<3, 5>(&joint), y);
        assert_eq!(calibration_marginal(&joint), c);
        assert!(joint.cov.fixed_view::<3, 2>(0, 3).iter().all(|v| *v == 0.0));

        let m = Vector2::new(1.1, 0.1);
        let p = Matrix2::new(0.01, 0.002, 0.002, 0.04);
        let got = condition_position::<3, 5>(&b, &GaussianBelief { mean: m, cov: p }).unwrap();
        let cov_yc = b.cov.fixed_view::<3, 2>(0, 3).into_owned();
        let k = cov_yc * c.cov.try_inverse().unwrap();
        let expected_mean = y.mean + k * (m - c.mean);
        let expected_cov = y.cov - k * cov_yc.transpose() + k * p * k.transpose();
        assert!((got.mean - expected_mean).amax() < 1e-12, "{} vs {}", got.mean, expected_mean);
        assert!((got.cov - expected_cov).amax() < 1e-12, "{} vs {}", got.cov, expected_cov);

        let exact = condition_position::<3, 5>(&b, &GaussianBelief { mean: m, cov: Matrix2::zeros() }).unwrap();
        let lambda = b.cov.try_inverse().unwrap();
        let lambda_yy_inv = lambda.fixed_view::<3, 3>(0, 0).into_owned().try_inverse().unwrap();
        let lambda_yc = lambda.fixed_view::<3, 2>(0, 3).into_owned();
        let precision_mean = y.mean - lambda_yy_inv * lambda_yc * (m - c.mean);
        assert!((exact.mean - precision_mean).amax() < 1e-10, "{} vs {}", exact.mean, precision_mean);
        assert!((exact.cov - lambda_yy_inv).amax() < 1e-10, "{} vs {}", exact.cov, lambda_yy_inv);
    }

    /// `b` over (y₁, y₂, s, b) with an independent height y₃ ~ N(z, v) inserted as θ[2].
    fn with_independent_height(b: &GaussianBelief<4>, z: f64, v: f64) -> GaussianBelief<5> {
        let index = [0, 1, usize::MAX, 2, 3];
        let mean = SVector::<f64, 5>::from_fn(|i, _| if index[i] == usize::MAX { z } else { b.mean[index[i]] });
        let cov = SMatrix::<f64, 5, 5>::from_fn(|i, j| match (index[i], index[j]) {
            (usize::MAX, usize::MAX) => v,
            (usize::MAX, _) | (_, usize::MAX) => 0.0,
            (a, c) => b.cov[(a, c)],
        });
        GaussianBelief { mean, cov }
    }

    /// A height independent of everything else changes nothing about c: 3-D landmarks
    /// send the sites, pool, swapped priors and conditioned (y₁, y₂) of the 2-D ones
    /// (to rounding: the 5×5 factorisations differ from the 4×4 ones), and the height
    /// keeps its own marginal. Also checks the 3-D swap against a 5-D Kalman filter.
    #[test]
    fn three_d_landmarks_with_an_independent_height_pool_as_the_planar_ones() {
        let prior = GaussianBelief { mean: Vector2::new(1.0, 0.0), cov: Matrix2::new(0.04, 0.0, 0.0, 1.0) };
        let planar = [belief4(), {
            let mut b = belief4();
            b.mean = Vector4::new(-2.0, 4.0, 1.02, -0.4);
            b.cov *= 0.5;
            b
        }];
        let cavity = GaussianBelief { mean: Vector2::new(1.01, 0.05), cov: Matrix2::new(0.03, 0.001, 0.001, 0.9) };
        let spatial = [with_independent_height(&planar[0], 2.5, 1.7), with_independent_height(&planar[1], -0.5, 0.3)];
        let pooled2 = pool_calibration(&prior, &[(planar[0], cavity), (planar[1], prior)]).unwrap();
        let pooled3 = pool_calibration(&prior, &[(spatial[0], cavity), (spatial[1], prior)]).unwrap();
        assert!((pooled2.mean - pooled3.mean).amax() < 1e-12, "{} vs {}", pooled2.mean, pooled3.mean);
        assert!((pooled2.cov - pooled3.cov).amax() < 1e-12, "{} vs {}", pooled2.cov, pooled3.cov);
        let (site2, site3) = (calibration_site(&planar[0], &cavity).unwrap(), calibration_site(&spatial[0], &cavity).unwrap());
        assert!((site2.precision - site3.precision).amax() < 1e-9 && (site2.info - site3.info).amax() < 1e-9);

        let conditioned2 = condition_position::<2, 4>(&planar[0], &pooled2).unwrap();
        let conditioned3 = condition_position::<3, 5>(&spatial[0], &pooled2).unwrap();
        assert!((conditioned3.mean.xy() - conditioned2.mean).amax() < 1e-12);
        assert!((conditioned3.cov.fixed_view::<2, 2>(0, 0) - conditioned2.cov).amax() < 1e-12);
        assert!((conditioned3.mean.z - 2.5).abs() < 1e-12 && (conditioned3.cov[(2, 2)] - 1.7).abs() < 1e-12);
        assert!(conditioned3.cov.fixed_view::<1, 2>(2, 0).amax() < 1e-12);

        let own = calibration_marginal(&planar[0]);
        let swapped2 = replace_calibration_prior(&planar[0], &own, &pooled2).unwrap();
        let swapped3 = replace_calibration_prior(&spatial[0], &own, &pooled2).unwrap();
        let expect = with_independent_height(&swapped2, 2.5, 1.7);
        assert!((swapped3.mean - expect.mean).amax() < 1e-9, "{} vs {}", swapped3.mean, expect.mean);
        assert!((swapped3.cov - expect.cov).amax() < 1e-9, "{} vs {}", swapped3.cov, expect.cov);

        // A range-like linear measurement in 3-D seen from N(y) × N(c; old), re-based on
        // N(c; new), equals the same measurement seen from N(y) × N(c; new).
        let kalman5 = |b: &GaussianBelief<5>, h: SVector<f64, 5>, z: f64, r: f64| {
            let s = (h.transpose() * b.cov * h)[(0, 0)] + r;
            let k = b.cov * h / s;
            GaussianBelief { mean: b.mean + k * (z - h.dot(&b.mean)), cov: b.cov - k * s * k.transpose() }
        };
        let position = GaussianBelief { mean: Vector3::new(2.0, -3.0, 1.5), cov: Matrix3::new(4.0, 0.5, 0.2, 0.5, 2.0, -0.1, 0.2, -0.1, 3.0) };
        let old = GaussianBelief { mean: Vector2::new(1.0, 0.0), cov: Matrix2::new(0.01, 0.0, 0.0, 1.0) };
        let new = GaussianBelief { mean: Vector2::new(1.07, 0.4), cov: Matrix2::new(0.002, 0.0005, 0.0005, 0.3) };
        let h = SVector::<f64, 5>::from_column_slice(&[0.48, -0.64, 0.6, 7.0, 1.0]);
        let seen_old = kalman5(&joint_prior(&position, &old), h, 9.0, 0.25);
        let seen_new = kalman5(&joint_prior(&position, &new), h, 9.0, 0.25);
        let got = replace_calibration_prior(&seen_old, &old, &new).unwrap();
        assert!((got.mean - seen_new.mean).amax() < 1e-9, "{} vs {}", got.mean, seen_new.mean);
        assert!((got.cov - seen_new.cov).amax() < 1e-9, "{} vs {}", got.cov, seen_new.cov);
    }

    #[test]
    fn a_failed_factorisation_is_a_named_error() {
        let singular = GaussianBelief { mean: Vector2::zeros(), cov: Matrix2::zeros() };
        let named = |e: EstimatorError| match e {
            EstimatorError::NotPositiveDefinite { quantity, .. } => quantity,
            other => panic!("{other:?}"),
        };
        assert_eq!(named(pool_calibration::<4>(&singular, &[]).unwrap_err()), "calibration prior covariance");
        let b = belief4();
        let mut flat = b;
        flat.cov.fixed_view_mut::<2, 2>(2, 2).fill(0.0);
        assert_eq!(named(condition_position::<2, 4>(&flat, &singular).unwrap_err()), "calibration marginal covariance");
        assert_eq!(
            named(replace_calibration_prior(&b, &singular, &calibration_marginal(&b)).unwrap_err()),
            "replaced calibration covariance"
        );
        assert!(CalibrationPrior::EXACT.belief().cholesky().is_err());
    }
}
