//! The planner on 3-D beliefs (issue 15): [`SpatialEvaluator`] and the generic
//! multi-landmark entry points with `GaussianBelief<3>` (z relative to the sensor's
//! plane, the sensor at (x, y, 0)), against references written here: a dense cubature of
//! E[∇²h] and of the expected Fisher information, the EKF update, the planar evaluator
//! in the limit σ_z → 0, and the goal scheduler on a 3-D localizer run.

use landmark_flow::estimator::GaussianBelief;
use landmark_flow::goal_scheduler::{plan, GoalScheduler, PlanTrigger};
use landmark_flow::localizer::{Localizer, LocalizerConfig, PriorsConfig, RangeInput, UnknownLandmarkPolicy};
use landmark_flow::msg::Stamp;
use landmark_flow::node_config::LandmarkFlowNodeConfig;
use landmark_flow::planner::{
    multi_criterion_grid, plan_next_goal_multi, CandidateStatus, GoalPolicy, LandmarkHypothesis, LandmarkSelection,
    PlannerConfig, ReductionForm, SigmaDotEvaluator, SpatialEvaluator,
};
use nalgebra::{Isometry3, Matrix2, Matrix3, Translation3, UnitQuaternion, Vector2, Vector3};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// E_q[f(s)] for q = N(μ, Σ) by the tensor midpoint rule in whitened coordinates
/// (s = μ + Lε, ε on [−7, 7]³ with `k` points per axis, weights φ(ε) normalised to 1):
/// exponentially convergent for the smooth integrands used here (the sensor outside the
/// belief), independent of the planner's samples.
fn cubature<const R: usize, const C: usize>(
    belief: &GaussianBelief<3>,
    k: usize,
    f: impl Fn(&Vector3<f64>) -> nalgebra::SMatrix<f64, R, C>,
) -> nalgebra::SMatrix<f64, R, C> {
    let l = nalgebra::Cholesky::new(belief.cov).expect("SPD").l();
    let h = 14.0 / k as f64;
    let axis: Vec<(f64, f64)> = (0..k)
        .map(|i| {
            let e = -7.0 + (i as f64 + 0.5) * h;
            (e, (-0.5 * e * e).exp())
        })
        .collect();
    let mut sum = nalgebra::SMatrix::<f64, R, C>::zeros();
    let mut total = 0.0;
    for &(a, wa) in &axis {
        for &(b, wb) in &axis {
            for &(c, wc) in &axis {
                let w = wa * wb * wc;
                sum += f(&(belief.mean + l * Vector3::new(a, b, c))) * w;
                total += w;
            }
        }
    }
    sum / total
}

/// (I − uuᵀ)/h at s for the sensor at c: ∇²h, h = ‖s − c‖.
fn range_hessian(s: &Vector3<f64>, c: &Vector3<f64>) -> Matrix3<f64> {
    let d = s - c;
    let h = d.norm();
    (Matrix3::identity() - d * d.transpose() / (h * h)) / h
}

fn belief3(mean: [f64; 3], cov: Matrix3<f64>) -> GaussianBelief<3> {
    GaussianBelief::new(Vector3::from(mean), cov).expect("SPD")
}

fn rotated(diag: [f64; 3], angle: f64) -> Matrix3<f64> {
    let r = nalgebra::Rotation3::from_euler_angles(0.3 * angle, -0.2 * angle, angle).into_inner();
    let c = r * Matrix3::from_diagonal(&Vector3::from(diag)) * r.transpose();
    0.5 * (c + c.transpose())
}

/// M(c) = E_q[∇²h] against the dense cubature, for sensors outside the belief: a ceiling
/// anchor 2.5 m up (z wide, xy tight: the case where the Stein form's error grows as
/// 1/σ_xy) and a correlated belief near the plane. Tolerance: 5 standard errors of the
/// Monte-Carlo mean, the integrand's standard deviation taken from the cubature
/// (antithetic, moment-matched samples only lower it), plus the cubature's own error.
#[test]
fn range_hessian_matches_a_dense_cubature_of_the_hessian() {
    let cases = [
        (belief3([0.0, 0.0, 2.5], Matrix3::from_diagonal(&Vector3::new(0.05f64.powi(2), 0.05f64.powi(2), 1.0))), [1.5, 0.5]),
        (belief3([0.0, 0.0, 2.5], Matrix3::from_diagonal(&Vector3::new(0.05f64.powi(2), 0.05f64.powi(2), 1.0))), [3.0, -1.0]),
        (belief3([1.0, -0.5, 0.8], rotated([0.4, 0.1, 0.2], 0.7)), [4.0, 2.0]),
        (belief3([1.0, -0.5, 2.0], rotated([1.0, 0.3, 0.5], -1.1)), [-3.0, 1.0]),
    ];
    let n = 20_000;
    for (k, (belief, x)) in cases.iter().enumerate() {
        let x = Vector2::from(*x);
        let c = SpatialEvaluator::sensor(&x);
        let mut rng = StdRng::seed_from_u64(40 + k as u64);
        let ev = SpatialEvaluator::new(belief, 0.25, n, LandmarkHypothesis::FromBelief { draws: 1 }, &mut rng).unwrap();
        let got = ev.expected_range_hessian(&x);
        let want = cubature(belief, 64, |s| range_hessian(s, &c));
        let second = cubature(belief, 64, |s| range_hessian(s, &c).component_mul(&range_hessian(s, &c)));
        for i in 0..3 {
            for j in 0..3 {
                let sd = (second[(i, j)] - want[(i, j)].powi(2)).max(0.0).sqrt();
                let tol = 5.0 * sd / (n as f64).sqrt() + 1e-9;
                assert!(
                    (got[(i, j)] - want[(i, j)]).abs() <= tol,
                    "case {k}, M[{i}{j}] = {} vs cubature {} (tol {tol:e})",
                    got[(i, j)],
                    want[(i, j)]
                );
            }
        }
    }
}

/// EKF update with H = ∇h(μ)ᵀ: (λmax(Σ − P⁺), P⁺), P⁺ = Σ − ΣHᵀHΣ/(HΣHᵀ + σ²).
fn ekf(belief: &GaussianBelief<3>, c: &Vector3<f64>, noise_var: f64) -> (f64, Matrix3<f64>) {
    let h = (belief.mean - c).normalize();
    let sh = belief.cov * h;
    let reduction = sh * sh.transpose() / (h.dot(&sh) + noise_var);
    (reduction.symmetric_eigen().eigenvalues.max(), belief.cov - reduction)
}

/// Near-linear regime (σ ≤ 3 cm, the sensor 12–20 m away): the natural step's reduction
/// and predicted posterior, and the expected-Fisher ones, equal the EKF's. One draw
/// y ~ q and the one-node rule t = 0: z = ‖c − y‖ differs from ‖c − μ‖ by ~σ_q, so the
/// directions across the line of sight get G = (1 − z/h)/σ² ≈ ±σ_q/(hσ²) (≤ 0.3 m⁻²
/// here against 1/σ² = 100 m⁻² along it); their share of the reduction is ≤ σ_q²·0.3/1
/// relative to Σ's scale, i.e. < 1e-3; the Fisher form's E[uuᵀ] − u(μ)u(μ)ᵀ is
/// O(σ_q²/h²) < 1e-5. Tolerances: 1 % of the reduction, 1e-3 λmax(Σ) per posterior entry.
#[test]
fn natural_step_and_fisher_forms_match_the_ekf_in_the_near_linear_regime() {
    let noise_var = 0.01;
    let cases = [
        (belief3([0.0, 0.0, 2.5], rotated([0.03f64.powi(2), 0.02f64.powi(2), 0.01f64.powi(2)], 0.4)), [15.0, 4.0]),
        (belief3([2.0, 1.0, 1.0], rotated([0.01f64.powi(2), 0.03f64.powi(2), 0.02f64.powi(2)], 1.3)), [-10.0, 12.0]),
        (belief3([0.0, 0.0, 2.5], rotated([0.02f64.powi(2), 0.02f64.powi(2), 0.03f64.powi(2)], 0.0)), [0.0, 12.0]),
    ];
    let rule = [(0.0, 1.0)];
    for (k, (belief, x)) in cases.iter().enumerate() {
        let x = Vector2::from(*x);
        let c = SpatialEvaluator::sensor(&x);
        let mut rng = StdRng::seed_from_u64(7 + k as u64);
        let ev = SpatialEvaluator::new(belief, noise_var, 256, LandmarkHypothesis::FromBelief { draws: 1 }, &mut rng).unwrap();
        let (want, posterior) = ekf(belief, &c, noise_var);
        let scale = belief.cov.symmetric_eigen().eigenvalues.max();
        for (name, got, got_p) in [
            ("natural step", ev.expected_sigma_reduction(&x, &rule), ev.expected_posterior_cov(&x, &rule)),
            ("expected Fisher", ev.expected_fisher_reduction(&x), ev.expected_fisher_posterior_cov(&x)),
        ] {
            assert!((got - want).abs() <= 0.01 * want, "case {k} {name}: reduction {got:e} vs EKF {want:e}");
            assert!(
                (got_p - posterior).amax() <= 1e-3 * scale,
                "case {k} {name}: posterior {got_p:?} vs EKF {posterior:?}"
            );
        }
    }
}

/// σ_z → 0 with the landmark in the sensor's plane: every 3-D criterion tends to the
/// planar evaluator's on the (x, y) marginal (the range is then planar). The streams of
/// samples cannot match (three normals per point against two), so both use many samples
/// (8192 s, 8192 y draws) and the tolerance is Monte-Carlo: 2 % relative (the y draws,
/// which are not moment-matched, dominate: the criteria vary by ≲ 50 % over y ~ q, so one
/// standard error is ≲ 0.6 %), plus the z variance's own effect, O(σ_z²/h²) < 1e-6.
#[test]
fn three_d_criteria_tend_to_the_planar_ones_as_the_height_variance_vanishes() {
    let mean2 = Vector2::new(0.5, -0.3);
    let cov2 = Matrix2::new(0.3, 0.1, 0.1, 0.2);
    let planar = GaussianBelief::new(mean2, cov2).unwrap();
    let mut cov3 = Matrix3::zeros();
    cov3.fixed_view_mut::<2, 2>(0, 0).copy_from(&cov2);
    cov3[(2, 2)] = 1e-3f64.powi(2);
    let spatial = belief3([mean2.x, mean2.y, 0.0], cov3);
    let noise_var = 0.09;
    let (samples, draws) = (8192, 8192);
    let ev2 = SigmaDotEvaluator::new(&planar, noise_var, samples, LandmarkHypothesis::FromBelief { draws }, &mut StdRng::seed_from_u64(1))
        .unwrap();
    let ev3 = SpatialEvaluator::new(&spatial, noise_var, samples, LandmarkHypothesis::FromBelief { draws }, &mut StdRng::seed_from_u64(2))
        .unwrap();
    let rule = landmark_flow::estimator::cubature::gauss_hermite_1d(4);
    let close = |a: f64, b: f64, what: &str| {
        eprintln!("{what}: 3-D {a:.6} vs planar {b:.6} ({:.2} %)", 100.0 * (a - b).abs() / a.abs().max(b.abs()));
        assert!((a - b).abs() <= 0.02 * a.abs().max(b.abs()), "{what}: 3-D {a} vs planar {b}")
    };
    for x in [Vector2::new(3.0, 0.0), Vector2::new(-2.0, 2.5), Vector2::new(0.5, -4.0)] {
        close(ev3.expected_sigma_dot_norm(&x), ev2.expected_sigma_dot_norm(&x), "E‖Σ̇‖");
        close(ev3.far_field_sigma_dot_norm(&x), ev2.far_field_sigma_dot_norm(&x), "far field");
        close(ev3.expected_information_gain(&x), ev2.expected_information_gain(&x), "information gain");
        close(ev3.expected_sigma_reduction(&x, &rule), ev2.expected_sigma_reduction(&x, &rule), "natural-step reduction");
        close(ev3.expected_fisher_reduction(&x), ev2.expected_fisher_reduction(&x), "Fisher reduction");
        let (p3, p2) = (ev3.expected_posterior_cov(&x, &rule), ev2.expected_posterior_cov(&x, &rule));
        assert!((p3.fixed_view::<2, 2>(0, 0) - p2).amax() <= 0.02 * cov2.amax(), "posterior {p3:?} vs {p2:?}");
        let (f3, f2) = (ev3.expected_fisher_posterior_cov(&x), ev2.expected_fisher_posterior_cov(&x));
        assert!((f3.fixed_view::<2, 2>(0, 0) - f2).amax() <= 0.02 * cov2.amax(), "Fisher posterior {f3:?} vs {f2:?}");
    }
    // The far field above is at its floor 1/(2σ²) (‖c − y‖ < 2‖c − μ‖ for every draw);
    // near the mean it is not (the other criteria's sample sets have 1/h tails there).
    // There the ratio ‖c − y‖/‖c − μ‖ varies over y by O(1) relative: 200 000 draws
    // (standard error ≈ 0.3 %).
    let near = mean2 + Vector2::new(0.2, 0.1);
    let draws = LandmarkHypothesis::FromBelief { draws: 200_000 };
    let ev2 = SigmaDotEvaluator::new(&planar, noise_var, 2, draws, &mut StdRng::seed_from_u64(3)).unwrap();
    let ev3 = SpatialEvaluator::new(&spatial, noise_var, 2, draws, &mut StdRng::seed_from_u64(4)).unwrap();
    let (a, b) = (ev3.far_field_sigma_dot_norm(&near), ev2.far_field_sigma_dot_norm(&near));
    assert!(b > 1.5 / (2.0 * noise_var), "off its floor: {b}");
    close(a, b, "far field near the mean");
}

/// λmax(Σ − (Σ⁻¹ + E_s[uuᵀ]/σ²)⁻¹) with E_s by the dense cubature and nalgebra inverses.
fn reference_fisher_reduction(belief: &GaussianBelief<3>, x: &Vector2<f64>, noise_var: f64) -> f64 {
    let c = Vector3::new(x.x, x.y, 0.0);
    let info = cubature(belief, 40, |s| {
        let u = (s - c).normalize();
        u * u.transpose()
    }) / noise_var;
    let post = (belief.cov.try_inverse().unwrap() + info).try_inverse().unwrap();
    let d = belief.cov - post;
    (0.5 * (d + d.transpose())).symmetric_eigen().eigenvalues.max()
}

/// A ceiling anchor 2.5 m above the sensor's plane at horizontal (0, 0), the robot 1.8 m
/// from it horizontally (candidates within 1 m of the robot, ≥ 1 m from the anchor).
/// * z uncertain, xy known: a range says most about z where dz/r is largest, so the goal
///   moves in toward the anchor (to the 1 m exclusion ring);
/// * xy uncertain, z known: the horizontal information (ρ/r)² grows with the horizontal
///   distance ρ, so the goal moves out;
/// * y (across the line of sight) uncertain, z known: the goal turns to where the bearing
///   changes most;
/// * z and y uncertain (λmax is z's): the 3-D goal moves in for z, while the planar
///   marginal, blind to z, turns for y like the previous case: the planar choice differs,
///   and is worse than the 3-D one by the reference.
///
/// In every case the 3-D plan (expected-Fisher form) is the argmax of the reduction
/// λmax(Σ − (Σ⁻¹ + E_s[uuᵀ]/σ²)⁻¹) computed here by dense cubature over the same cells,
/// within 2 % of the best (the planner's E_s is over 256 moment-matched samples; the
/// reference spreads over ≥ 10 % of its best across the cells), and the natural-step
/// form moves the same way.
#[test]
fn a_ceiling_anchor_goal_follows_what_the_range_says_about_z_or_xy() {
    let robot = Vector2::new(1.8, 0.0);
    let diag = |x: f64, y: f64, z: f64| Matrix3::from_diagonal(&Vector3::new(x * x, y * y, z * z));
    let anchor = |cov| belief3([0.0, 0.0, 2.5], cov);
    let base = PlannerConfig { policy: GoalPolicy::SigmaReduction, ..PlannerConfig::default() };
    let mut fisher = base;
    fisher.criterion.reduction_form = ReductionForm::ExpectedFisher;
    let rho = |p: &Vector2<f64>| p.norm();
    // Mirror images in y are the same goal: compare (x, |y|).
    let folded = |p: Vector2<f64>| Vector2::new(p.x, p.y.abs());
    #[derive(PartialEq)]
    enum Expect {
        In,
        Out,
        Turn,
        InUnlikePlanar,
    }
    let cases = [
        ("z uncertain", anchor(diag(0.05, 0.05, 1.0)), 0.25, Expect::In),
        ("xy uncertain", anchor(diag(1.0, 1.0, 0.05)), 0.25, Expect::Out),
        ("y uncertain", anchor(diag(0.05, 1.0, 0.05)), 0.25, Expect::Turn),
        ("z and y uncertain", anchor(diag(0.05, 0.5, 1.5)), 1.0, Expect::InUnlikePlanar),
    ];
    for (name, belief, noise_var, expect) in cases {
        let (goal, grid) = plan_next_goal_multi::<GaussianBelief<3>>(&fisher, robot, &[belief], noise_var, 3).unwrap();
        let grid = grid.unwrap();
        let reference: Vec<(usize, f64)> = (0..grid.candidates.positions.len())
            .filter(|&i| grid.candidates.status[i] == CandidateStatus::Valid)
            .map(|i| (i, reference_fisher_reduction(&belief, &grid.candidates.positions[i], noise_var)))
            .collect();
        let best = reference.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max);
        let worst = reference.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
        let at_goal = reference_fisher_reduction(&belief, &goal.position_m, noise_var);
        let argmax = reference.iter().max_by(|a, b| a.1.total_cmp(&b.1)).map(|r| grid.candidates.positions[r.0]).unwrap();
        let (natural, _) = plan_next_goal_multi(&base, robot, &[belief], noise_var, 3).unwrap();
        let planar = GaussianBelief::new(Vector2::zeros(), belief.cov.fixed_view::<2, 2>(0, 0).into_owned()).unwrap();
        let (planar_goal, _) = plan_next_goal_multi(&base, robot, &[planar], noise_var, 3).unwrap();
        eprintln!(
            "{name}: reference argmax {:?} ({best:.4}; worst {worst:.4}); 3-D Fisher goal {:?} ({at_goal:.4}), natural {:?}; planar {:?}",
            argmax.as_slice(),
            goal.position_m.as_slice(),
            natural.position_m.as_slice(),
            planar_goal.position_m.as_slice()
        );
        assert!(best - worst > 0.1 * best, "{name}: the reference must discriminate ({worst:e}..{best:e})");
        assert!(
            at_goal >= best - 0.02 * best,
            "{name}: the goal {:?} has reference reduction {at_goal:e}, the best cell {argmax:?} {best:e}",
            goal.position_m
        );
        for (form, g) in [("expected Fisher", goal.position_m), ("natural step", natural.position_m)] {
            match expect {
                Expect::In | Expect::InUnlikePlanar => {
                    assert!(rho(&g) < rho(&robot) - 0.5, "{name}, {form}: goal {g:?} should move toward the anchor")
                }
                Expect::Out => assert!(rho(&g) > rho(&robot) + 0.5, "{name}, {form}: goal {g:?} should move away from the anchor"),
                Expect::Turn => assert!(g.y.abs() > 0.5, "{name}, {form}: goal {g:?} should turn across the line of sight"),
            }
        }
        if expect == Expect::InUnlikePlanar {
            assert!(
                (folded(goal.position_m) - folded(planar_goal.position_m)).norm() > 0.3,
                "{name}: the planar marginal's goal {:?} vs the 3-D {:?}",
                planar_goal.position_m,
                goal.position_m
            );
            let at_planar = reference_fisher_reduction(&belief, &planar_goal.position_m, noise_var);
            eprintln!("{name}: reference reduction at the planar goal {at_planar:.4}");
            assert!(at_planar < best - 0.02 * best, "{name}: the planar goal is not worse ({at_planar} vs {best})");
        }
    }
}

/// The multi-landmark sum over 3-D beliefs: one belief is the multi entry's single
/// case, two beliefs' grid is the sum of each one's grid at its landmark seed (the
/// per-landmark terms are independent), and a 3-D plan refuses nothing valid.
#[test]
fn three_d_multi_grid_is_the_sum_of_its_landmarks() {
    let a = belief3([3.0, 0.0, 2.5], rotated([0.5, 0.3, 1.0], 0.2));
    let b = belief3([-2.0, 2.0, 2.0], rotated([0.2, 0.6, 0.8], 1.0));
    let config = PlannerConfig { policy: GoalPolicy::SigmaReduction, ..PlannerConfig::default() };
    let x = Vector2::new(0.3, 0.1);
    let both = multi_criterion_grid(&config, x, &[a, b], 0.25, 9).unwrap();
    let only_a = multi_criterion_grid(&config, x, &[a], 0.25, 9).unwrap();
    let only_b = multi_criterion_grid(&config, x, &[b], 0.25, landmark_flow::planner::landmark_seed(9, 1)).unwrap();
    for i in 0..both.values.len() {
        if both.candidates.status[i] == CandidateStatus::Valid {
            let sum = only_a.values[i] + only_b.values[i];
            assert!((both.values[i] - sum).abs() <= 1e-12 * sum, "cell {i}: {} vs {sum}", both.values[i]);
        }
    }
}

const SENSOR_HEIGHT_M: f64 = 0.3;

fn localizer_config() -> LocalizerConfig {
    LocalizerConfig {
        odom_frame_id: "odom".into(),
        sensor_offset_m: vec![0.0, 0.0, SENSOR_HEIGHT_M],
        unknown_landmarks: UnknownLandmarkPolicy::Reject,
        dimension: 3,
        priors: PriorsConfig {
            ids: vec!["anchor".into(), "other".into()],
            means_m: vec![2.8, 0.4, -3.0, 3.0],
            covs_m2: vec![2.25, 0.0, 0.0, 2.25, 1.0, 0.0, 0.0, 1.0],
            height_means_m: vec![1.0, 2.0],
            height_stds_m: vec![2.0, 1.0],
        },
        ..LocalizerConfig::default()
    }
}

/// A 3-D localizer run (a robot on an arc of radius 6 m, 30 ranges to an anchor at
/// (2, 1, 2.5) from a sensor 0.3 m above the base): the goal scheduler's request carries
/// the 3-D beliefs with z relative to the sensor's plane (summary3's z − 0.3 m, the
/// covariance unchanged), for the target and, with `landmarks: all`, every track; the
/// plan is valid (reachable, ≥ min_landmark_distance_m horizontally from every mean) and
/// is plan_next_goal_multi's on those beliefs.
#[test]
fn goal_scheduler_plans_on_the_3d_beliefs_relative_to_the_sensor_plane() {
    let mut loc = Localizer::new(localizer_config()).unwrap();
    let truth = Vector3::new(2.0, 1.0, 2.5);
    let mut rng = StdRng::seed_from_u64(3);
    let mut base = Vector3::zeros();
    for k in 0..30 {
        let (t, a) = (1.0 + k as f64 * 0.1, k as f64 * 3f64.to_radians());
        base = Vector3::new(6.0 * a.cos(), 6.0 * a.sin(), 0.0);
        let pose = Isometry3::from_parts(Translation3::from(base), UnitQuaternion::from_euler_angles(0.0, 0.0, a + 1.2));
        loc.add_odometry(t, "odom", pose).unwrap();
        let sensor = base + Vector3::new(0.0, 0.0, SENSOR_HEIGHT_M);
        let noise: f64 = StandardNormal.sample(&mut rng);
        let range = RangeInput {
            topic: "range".into(),
            stamp_s: t,
            frame_id: String::new(),
            landmark_id: "anchor".into(),
            range_m: (truth - sensor).norm() + 0.2 * noise,
            variance_m2: 0.04,
            sensor_limits_m: None,
        };
        loc.add_range(&range).unwrap();
    }
    assert_eq!(loc.latest_sensor_height_m(), Some(SENSOR_HEIGHT_M), "base at z = 0 ⊕ the 0.3 m offset");
    let mut node = LandmarkFlowNodeConfig { localizer: localizer_config(), ..LandmarkFlowNodeConfig::default() };
    node.goal.target_landmark = "anchor".into();
    node.planner.policy = GoalPolicy::SigmaReduction;
    node.validate().unwrap();
    let shifted = |id: &str| {
        let s = loc.tracks()[id].summary3.as_ref().expect("3-D track").belief;
        (s.mean - Vector3::new(0.0, 0.0, SENSOR_HEIGHT_M), s.cov)
    };
    let request = GoalScheduler::new(&node).request(&PlanTrigger::Timer, &loc, Stamp::from_secs(4.0)).unwrap();
    let b3 = request.belief3.expect("3-D request");
    assert_eq!((b3.mean, b3.cov), shifted("anchor"));
    assert!(request.all_beliefs3.is_none());
    let planned = plan(&request).unwrap();
    let from = Vector2::new(base.x, base.y);
    let (goal, _) = plan_next_goal_multi(&node.planner, from, &[b3], request.noise_var_m2, request.seed).unwrap();
    assert_eq!(planned.goal, goal);
    assert!((planned.goal.position_m - from).norm() <= node.planner.max_step_m + 1e-9);
    assert!((planned.goal.position_m - b3.mean.xy()).norm() >= node.planner.min_landmark_distance_m);

    // Every landmark: both tracks, shifted the same way (the prior-only one included).
    node.goal.target_landmark.clear();
    node.planner.landmarks = LandmarkSelection::All;
    node.localizer.max_range_m = 50.0;
    let request = GoalScheduler::new(&node).request(&PlanTrigger::Timer, &loc, Stamp::from_secs(4.0)).unwrap();
    let all = request.all_beliefs3.clone().expect("all in reach");
    let want: Vec<_> = ["anchor", "other"].iter().map(|id| shifted(id)).collect();
    assert_eq!(all.iter().map(|b| (b.mean, b.cov)).collect::<Vec<_>>(), want);
    let planned = plan(&request).unwrap();
    for b in &all {
        assert!((planned.goal.position_m - b.mean.xy()).norm() >= node.planner.min_landmark_distance_m);
    }
    let (goal, _) = plan_next_goal_multi(&node.planner, from, &all, request.noise_var_m2, request.seed).unwrap();
    assert_eq!(planned.goal, goal);

    // Planar localizer: no 3-D beliefs in the request.
    let mut planar = localizer_config();
    planar.dimension = 2;
    let mut loc2 = Localizer::new(planar.clone()).unwrap();
    loc2.add_odometry(1.0, "odom", Isometry3::identity()).unwrap();
    node.localizer = planar;
    let request = GoalScheduler::new(&node).request(&PlanTrigger::Timer, &loc2, Stamp::from_secs(1.0)).unwrap();
    assert!(request.belief3.is_none() && request.all_beliefs3.is_none());
}
