//! The odometry error model (`localizer::drift`) against independent references:
//! a Monte Carlo simulation of the noisy robot written here from the model's
//! definition (noisy increments composed into a true pose, compared with the
//! odometry pose), hand-derived closed forms for a straight line and a rotation in
//! place, central finite differences for the Jacobians, and named config rejections.

use landmark_flow::localizer::drift::{
    map_pose, map_pose_jacobian, planar_pose, planar_pose_covariance, transition, transition_jacobians, DriftError,
    DriftState, OdometryErrorConfig, OdometryErrorModel, BIAS, EX, EY, EYAW,
};
use nalgebra::{Isometry2, Isometry3, Matrix2, Matrix4, Translation3, UnitQuaternion, Vector2, Vector3, Vector4};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// A planar pose written out, so the simulation does not use the code's pose algebra.
#[derive(Debug, Clone, Copy)]
struct Pose {
    x: f64,
    y: f64,
    th: f64,
}

impl Pose {
    /// self ⊕ (dx, dy, dth), (dx, dy) in the frame of self.
    fn compose(self, dx: f64, dy: f64, dth: f64) -> Pose {
        let (s, c) = self.th.sin_cos();
        Pose { x: self.x + c * dx - s * dy, y: self.y + s * dx + c * dy, th: self.th + dth }
    }

    fn iso(self) -> Isometry2<f64> {
        Isometry2::new(Vector2::new(self.x, self.y), self.th)
    }
}

/// One commanded step: chord length Δs (m) and heading change Δθ (rad); the chord
/// points at Δθ/2 (a circular arc), so the translation is Δs·(cos Δθ/2, sin Δθ/2).
#[derive(Debug, Clone, Copy)]
struct Step {
    ds: f64,
    dth: f64,
}

impl Step {
    fn translation(self) -> (f64, f64) {
        (self.ds * (self.dth / 2.0).cos(), self.ds * (self.dth / 2.0).sin())
    }
}

/// 200 steps: straight, a left arc, a right turn in place, straight, a right arc,
/// straight; `ds` per moving step.
fn mixed_path(ds: f64) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut push = |n: usize, ds: f64, dth: f64| steps.extend(std::iter::repeat_n(Step { ds, dth }, n));
    push(50, ds, 0.0);
    push(20, ds, 0.08);
    push(10, 0.0, -0.15);
    push(60, ds, 0.0);
    push(30, ds, -0.05);
    push(30, ds, 0.0);
    steps
}

/// The odometry poses P_0..P_N of a path from `start`.
fn odometry_poses(start: Pose, steps: &[Step]) -> Vec<Pose> {
    let mut poses = vec![start];
    for s in steps {
        let (dx, dy) = s.translation();
        poses.push(poses.last().unwrap().compose(dx, dy, s.dth));
    }
    poses
}

/// Propagates `initial` along consecutive odometry poses.
fn propagate_path(model: &OdometryErrorModel, initial: DriftState, poses: &[Pose], dt_s: f64) -> DriftState {
    poses.windows(2).fold(initial, |state, w| model.propagate(&state, &w[0].iso(), &w[1].iso(), dt_s).unwrap())
}

/// Monte Carlo of the error model, from its definition: per run, b₀ ~ N(b̄₀, σ_b²);
/// per step t̃ = t + n_t·t/‖t‖, Δθ̃ = Δθ − b·dt + n_θ, X ← X ⊕ (t̃, Δθ̃),
/// b ← b + n_b; at the end E = X ⊕ P_N⁻¹. Returns the sample mean and covariance of
/// (ex, ey, eyaw, b).
fn monte_carlo(
    c: &OdometryErrorConfig,
    bias_mean: f64,
    start: Pose,
    steps: &[Step],
    dt_s: f64,
    runs: usize,
    seed: u64,
) -> (Vector4<f64>, Matrix4<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut normal = move || -> f64 { StandardNormal.sample(&mut rng) };
    let end = *odometry_poses(start, steps).last().unwrap();
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut b = bias_mean + c.gyro_bias_std_rad_per_s * normal();
        let mut x = start;
        for s in steps {
            let n_t = c.translation_std_m_per_sqrt_m * s.ds.sqrt() * normal();
            let var_th = c.rotation_std_rad_per_sqrt_rad.powi(2) * s.dth.abs() + c.rotation_std_rad_per_sqrt_m.powi(2) * s.ds;
            let n_th = var_th.sqrt() * normal();
            let (dx, dy) = s.translation();
            let scale = if s.ds > 0.0 { 1.0 + n_t / s.ds } else { 1.0 };
            x = x.compose(dx * scale, dy * scale, s.dth - b * dt_s + n_th);
            b += c.gyro_bias_walk_rad_per_s_per_sqrt_s * dt_s.sqrt() * normal();
        }
        let e_th = x.th - end.th;
        let (s, co) = e_th.sin_cos();
        let ex = x.x - (co * end.x - s * end.y);
        let ey = x.y - (s * end.x + co * end.y);
        samples.push(Vector4::new(ex, ey, e_th, b));
    }
    let n = runs as f64;
    let mean = samples.iter().sum::<Vector4<f64>>() / n;
    let cov = samples.iter().map(|v| (v - mean) * (v - mean).transpose()).sum::<Matrix4<f64>>() / (n - 1.0);
    (mean, cov)
}

/// Each mean and covariance entry within `k` Monte Carlo standard errors of the
/// propagated one: SE(mean_i) = √(Σ_ii/n), SE(cov_ij) = √((Σ_ii Σ_jj + Σ_ij²)/n)
/// (Gaussian fourth moments), Σ the propagated covariance.
fn assert_within_standard_errors(state: &DriftState, mc_mean: &Vector4<f64>, mc_cov: &Matrix4<f64>, n: usize, k: f64) {
    let (m, c) = (state.mean(), state.cov());
    let n = n as f64;
    let (mut worst_mean, mut worst_cov) = (0.0_f64, 0.0_f64);
    for i in 0..4 {
        let se = (c[(i, i)] / n).sqrt();
        let z = (mc_mean[i] - m[i]) / se;
        worst_mean = worst_mean.max(z.abs());
        assert!(z.abs() <= k, "mean[{i}]: MC {} vs {} ({z:.2} SE)", mc_mean[i], m[i]);
        for j in i..4 {
            let se = ((c[(i, i)] * c[(j, j)] + c[(i, j)].powi(2)) / n).sqrt();
            let z = (mc_cov[(i, j)] - c[(i, j)]) / se;
            worst_cov = worst_cov.max(z.abs());
            assert!(z.abs() <= k, "cov[{i},{j}]: MC {:e} vs {:e} ({z:.2} SE)", mc_cov[(i, j)], c[(i, j)]);
        }
    }
    eprintln!(" largest deviation: means {worst_mean:.2} SE, covariance entries {worst_cov:.2} SE");
}

/// The Monte Carlo moments in the propagated covariance's whitened coordinates:
/// ‖L⁻¹(m̂ − m)‖ and the eigenvalue range of L⁻¹ Σ̂ L⁻ᵀ (1 when they agree).
fn whitened(state: &DriftState, mc_mean: &Vector4<f64>, mc_cov: &Matrix4<f64>) -> (f64, f64, f64) {
    let chol = state.cov().cholesky().expect("propagated covariance is SPD after motion");
    let l_inv = chol.l().try_inverse().unwrap();
    let d = l_inv * (mc_mean - state.mean());
    let w = l_inv * mc_cov * l_inv.transpose();
    let eig = nalgebra::SymmetricEigen::new((w + w.transpose()) * 0.5).eigenvalues;
    (d.norm(), eig.min(), eig.max())
}

const START: Pose = Pose { x: 1.0, y: -2.0, th: 0.3 };
const RUNS: usize = 20_000;

#[test]
fn small_noise_propagation_matches_monte_carlo_within_four_standard_errors() {
    // Heading std at the end ≈ 7 mrad, so the O(σ²) terms of the linearisation are
    // ~σ_θ·√n/2 ≈ 0.5 SE on the means of (ex, ey) and ~σ_θ² ≈ 5e-5 relative on the
    // covariance: 4 SE bounds the Monte Carlo error, not the model's.
    let c = OdometryErrorConfig {
        translation_std_m_per_sqrt_m: 0.01,
        rotation_std_rad_per_sqrt_rad: 0.002,
        rotation_std_rad_per_sqrt_m: 0.0005,
        gyro_bias_walk_rad_per_s_per_sqrt_s: 2e-5,
        gyro_bias_std_rad_per_s: 2e-4,
        ..OdometryErrorConfig::default()
    };
    let (dt, bias_mean) = (0.1, 1e-3);
    let steps = mixed_path(0.05);
    let model = OdometryErrorModel::new(c.clone()).unwrap();
    let mut initial_cov = Matrix4::zeros();
    initial_cov[(BIAS, BIAS)] = c.gyro_bias_std_rad_per_s.powi(2);
    let initial = DriftState::new(Vector4::new(0.0, 0.0, 0.0, bias_mean), initial_cov).unwrap();
    let state = propagate_path(&model, initial, &odometry_poses(START, &steps), dt);
    let (mc_mean, mc_cov) = monte_carlo(&c, bias_mean, START, &steps, dt, RUNS, 11);
    eprintln!("small σ: propagated mean {:?}\n MC mean {:?}", state.mean().as_slice(), mc_mean.as_slice());
    eprintln!(" propagated cov {:.4e}\n MC cov {:.4e}", state.cov(), mc_cov);
    eprintln!(" whitened (|Δmean|, λmin, λmax) = {:?}", whitened(&state, &mc_mean, &mc_cov));
    assert_within_standard_errors(&state, &mc_mean, &mc_cov, RUNS, 4.0);
}

#[test]
fn default_noise_propagation_matches_monte_carlo_to_second_order() {
    // The shipped defaults on a 50 m path over 100 s: heading std at the end σ_θ ≈ 0.14
    // rad. e_θ and b are linear in the noise (e_θ = Σ δθ_j), so their moments must
    // match within 4 SE as in the small case. e_t is not: the exact e_t − e_t(first
    // order) is r = [(1 − cos θ) I − (sin θ − θ) J] q for a heading error θ at lever arm
    // q, so
    // - the means of (ex, ey) are off by at most E[1 − cos θ]·‖q‖ ≤ σ_θ²/2·max‖q‖
    //   (+ 4 SE);
    // - the rms of r relative to the first-order term θ·J q is ≈ √(3/4)·σ_θ, so the
    //   standard deviations of ex, ey may be off by a relative σ_θ and their
    //   correlations (with each other and with eyaw, b) by σ_θ.
    // (In whitened coordinates the mean error is large, ≈ 0.8: the second-order bias
    // lies along q, the thin direction of the linearised covariance, the EKF's
    // "banana", see the module doc.)
    let c = OdometryErrorConfig::default();
    let dt = 0.5;
    let steps = mixed_path(0.25);
    let poses = odometry_poses(START, &steps);
    let model = OdometryErrorModel::new(c.clone()).unwrap();
    let state = propagate_path(&model, model.initial_state(), &poses, dt);
    let (mc_mean, mc_cov) = monte_carlo(&c, 0.0, START, &steps, dt, RUNS, 12);
    let (m, cv) = (state.mean(), state.cov());
    let sigma_theta = cv[(EYAW, EYAW)].sqrt();
    let max_lever = poses.iter().map(|p| p.x.hypot(p.y)).fold(0.0, f64::max);
    let (d, lo, hi) = whitened(&state, &mc_mean, &mc_cov);
    eprintln!("default σ: σ_θ {sigma_theta:.4} rad, max ‖q‖ {max_lever:.2} m, ey std {:.3} m", cv[(EY, EY)].sqrt());
    eprintln!(" propagated mean {:?}\n MC mean {:?}", m.as_slice(), mc_mean.as_slice());
    eprintln!(" propagated cov {cv:.4e}\n MC cov {mc_cov:.4e}");
    eprintln!(" whitened |Δmean| {d:.4}, eigenvalues [{lo:.4}, {hi:.4}]");

    let n = RUNS as f64;
    for i in [EYAW, BIAS] {
        let z = (mc_mean[i] - m[i]) / (cv[(i, i)] / n).sqrt();
        assert!(z.abs() <= 4.0, "mean[{i}]: {z:.2} SE");
    }
    for (i, j) in [(EYAW, EYAW), (EYAW, BIAS), (BIAS, BIAS)] {
        let se = ((cv[(i, i)] * cv[(j, j)] + cv[(i, j)].powi(2)) / n).sqrt();
        let z = (mc_cov[(i, j)] - cv[(i, j)]) / se;
        assert!(z.abs() <= 4.0, "cov[{i},{j}]: {z:.2} SE");
    }
    let bias_bound = sigma_theta.powi(2) / 2.0 * max_lever;
    for i in [EX, EY] {
        let err = (mc_mean[i] - m[i]).abs();
        let bound = bias_bound + 4.0 * (cv[(i, i)] / n).sqrt();
        eprintln!(" mean[{i}] error {err:.4} m, bound {bound:.4} m");
        assert!(err <= bound, "mean[{i}] error {err} > {bound}");
        let ratio = (mc_cov[(i, i)] / cv[(i, i)]).sqrt();
        eprintln!(" std[{i}] MC/propagated {ratio:.4}");
        assert!((ratio - 1.0).abs() <= sigma_theta, "std[{i}] ratio {ratio}");
        for j in 0..4 {
            if j == i {
                continue;
            }
            let rho = |c: &Matrix4<f64>| c[(i, j)] / (c[(i, i)] * c[(j, j)]).sqrt();
            let diff = rho(&mc_cov) - rho(cv);
            eprintln!(" correlation[{i},{j}] MC {:.4} propagated {:.4}", rho(&mc_cov), rho(cv));
            assert!(diff.abs() <= sigma_theta, "correlation[{i},{j}] off by {diff}");
        }
    }
}

#[test]
fn straight_line_matches_the_closed_form() {
    // Along x from the origin, N steps of Δs, s_j = j·Δs, L = N·Δs, T = N·dt, q_b = 0.
    // To first order δθ_j = −b·dt + n_j (var σ_rm²Δs), e_θ = Σ δθ_j, e_y = −Σ δθ_j s_{j+1}
    // (heading error rotates the odometry frame about the origin, lever arm s_{j+1}),
    // e_x = Σ n_t,j. With S1 = Σ s_{j+1} = Δs N(N+1)/2, S2 = Σ s_{j+1}² = Δs² N(N+1)(2N+1)/6:
    //   var ex = σ_t² L;  var eyaw = σ_b² T² + σ_rm² L;  var b = σ_b²
    //   var ey = σ_b² dt² S1² + σ_rm² Δs S2
    //   cov(ey, eyaw) = −σ_b² N dt² S1 − σ_rm² Δs S1
    //   cov(ey, b) = σ_b² dt S1;  cov(eyaw, b) = −σ_b² T;  cov(ex, ·) = 0.
    let c = OdometryErrorConfig {
        translation_std_m_per_sqrt_m: 0.05,
        rotation_std_rad_per_sqrt_rad: 0.02,
        rotation_std_rad_per_sqrt_m: 0.01,
        gyro_bias_walk_rad_per_s_per_sqrt_s: 0.0,
        gyro_bias_std_rad_per_s: 1e-3,
        ..OdometryErrorConfig::default()
    };
    let (n, ds, dt) = (100usize, 0.1, 0.2);
    let (nf, l, t) = (n as f64, n as f64 * ds, n as f64 * dt);
    let model = OdometryErrorModel::new(c.clone()).unwrap();
    let poses: Vec<Pose> = (0..=n).map(|k| Pose { x: k as f64 * ds, y: 0.0, th: 0.0 }).collect();
    let state = propagate_path(&model, model.initial_state(), &poses, dt);
    let (st2, srm2, sb2) =
        (c.translation_std_m_per_sqrt_m.powi(2), c.rotation_std_rad_per_sqrt_m.powi(2), c.gyro_bias_std_rad_per_s.powi(2));
    let s1 = ds * nf * (nf + 1.0) / 2.0;
    let s2 = ds * ds * nf * (nf + 1.0) * (2.0 * nf + 1.0) / 6.0;
    let mut expected = Matrix4::zeros();
    expected[(EX, EX)] = st2 * l;
    expected[(EYAW, EYAW)] = sb2 * t * t + srm2 * l;
    expected[(BIAS, BIAS)] = sb2;
    expected[(EY, EY)] = sb2 * dt * dt * s1 * s1 + srm2 * ds * s2;
    expected[(EY, EYAW)] = -sb2 * nf * dt * dt * s1 - srm2 * ds * s1;
    expected[(EY, BIAS)] = sb2 * dt * s1;
    expected[(EYAW, BIAS)] = -sb2 * t;
    for (i, j) in [(EY, EYAW), (EY, BIAS), (EYAW, BIAS)] {
        expected[(j, i)] = expected[(i, j)];
    }
    let err = (state.cov() - expected).amax() / expected.amax();
    assert!(err < 1e-12, "relative error {err:e}\n{:e}\n{expected:e}", state.cov());
    assert!(state.mean().amax() < 1e-15, "zero bias mean keeps E at 0: {:?}", state.mean());
    // Continuous limit: var ey → σ_rm² L³/3 (the classic heading-random-walk growth).
    assert!(((srm2 * ds * s2) / (srm2 * l.powi(3) / 3.0) - 1.0).abs() < 0.02);

    // The map pose at the end, without bias: y_N = Σ δθ_j (L − s_{j+1}), so
    // var y = σ_rm² Δs³ (N−1)N(2N−1)/6, cov(y, yaw) = σ_rm² Δs² N(N−1)/2, var yaw = σ_rm² L,
    // var x = σ_t² L (the last step's heading noise does not move the robot yet).
    let model = OdometryErrorModel::new(OdometryErrorConfig { gyro_bias_std_rad_per_s: 0.0, ..c }).unwrap();
    let state = propagate_path(&model, model.initial_state(), &poses, dt);
    let pose = map_pose(&state, &poses[n].iso());
    let mut expected = nalgebra::Matrix3::zeros();
    expected[(0, 0)] = st2 * l;
    expected[(1, 1)] = srm2 * ds.powi(3) * (nf - 1.0) * nf * (2.0 * nf - 1.0) / 6.0;
    expected[(1, 2)] = srm2 * ds * ds * nf * (nf - 1.0) / 2.0;
    expected[(2, 1)] = expected[(1, 2)];
    expected[(2, 2)] = srm2 * l;
    let err = (pose.cov - expected).amax() / expected.amax();
    assert!(err < 1e-12, "relative error {err:e}\n{:e}\n{expected:e}", pose.cov);
    assert!((pose.pose.translation.vector - Vector2::new(l, 0.0)).norm() < 1e-12);
}

#[test]
fn rotation_in_place_matches_the_closed_form() {
    // Turning in place at p = (2, 1), N steps of Δθ, b̄₀ ≠ 0 and a bias random walk.
    // Exactly: e_θ = −dt Σ_{j<N} b_j + Σ n_j, b_j = b₀ + Σ_{i<j} w_i, and, since the
    // odometry position stays p, e_t = (I − R(e_θ)) p. So
    //   mean eyaw = −N dt b̄₀, mean e_t = (I − R(ē)) p
    //   var eyaw = dt² [N² σ_b² + q_b² dt (N−1)N(2N−1)/6] + N σ_r² Δθ
    //   cov(eyaw, b_N) = −dt [N σ_b² + q_b² dt N(N−1)/2],  var b_N = σ_b² + N q_b² dt
    // and to first order e_t = v·δe_θ with v = −J R(ē) p. The map position is p
    // exactly: its covariance is zero and the map yaw variance is var eyaw.
    let c = OdometryErrorConfig::default();
    let (n, dth, dt, b0) = (60usize, 0.05, 0.1, 5e-3);
    let nf = n as f64;
    let p = Vector2::new(2.0, 1.0);
    let model = OdometryErrorModel::new(c.clone()).unwrap();
    let poses: Vec<Pose> = (0..=n).map(|k| Pose { x: p.x, y: p.y, th: 0.4 + k as f64 * dth }).collect();
    let mut initial_cov = Matrix4::zeros();
    initial_cov[(BIAS, BIAS)] = c.gyro_bias_std_rad_per_s.powi(2);
    let initial = DriftState::new(Vector4::new(0.0, 0.0, 0.0, b0), initial_cov).unwrap();
    let state = propagate_path(&model, initial, &poses, dt);

    let (sb2, qb2, sr2) =
        (c.gyro_bias_std_rad_per_s.powi(2), c.gyro_bias_walk_rad_per_s_per_sqrt_s.powi(2), c.rotation_std_rad_per_sqrt_rad.powi(2));
    let e_mean = -nf * dt * b0;
    let rot = Matrix2::new(e_mean.cos(), -e_mean.sin(), e_mean.sin(), e_mean.cos());
    let et_mean = p - rot * p;
    let var_e = dt * dt * (nf * nf * sb2 + qb2 * dt * (nf - 1.0) * nf * (2.0 * nf - 1.0) / 6.0) + nf * sr2 * dth;
    let cov_eb = -dt * (nf * sb2 + qb2 * dt * nf * (nf - 1.0) / 2.0);
    let var_b = sb2 + nf * qb2 * dt;
    let rp = rot * p;
    let v = -Vector2::new(-rp.y, rp.x);
    let mut expected = Matrix4::zeros();
    expected.fixed_view_mut::<2, 2>(0, 0).copy_from(&(v * v.transpose() * var_e));
    for i in 0..2 {
        expected[(i, EYAW)] = v[i] * var_e;
        expected[(EYAW, i)] = v[i] * var_e;
        expected[(i, BIAS)] = v[i] * cov_eb;
        expected[(BIAS, i)] = v[i] * cov_eb;
    }
    expected[(EYAW, EYAW)] = var_e;
    expected[(EYAW, BIAS)] = cov_eb;
    expected[(BIAS, EYAW)] = cov_eb;
    expected[(BIAS, BIAS)] = var_b;
    let mean_expected = Vector4::new(et_mean.x, et_mean.y, e_mean, b0);
    assert!((state.mean() - mean_expected).amax() < 1e-12, "{:?} vs {:?}", state.mean(), mean_expected);
    let err = (state.cov() - expected).amax() / expected.amax();
    assert!(err < 1e-9, "relative error {err:e}\n{:e}\n{expected:e}", state.cov());

    let pose = map_pose(&state, &poses[n].iso());
    assert!((pose.pose.translation.vector - p).norm() < 1e-12);
    let yaw_error = pose.pose.rotation.angle() - (0.4 + nf * dth + e_mean);
    assert!(yaw_error.sin().abs() < 1e-12 && yaw_error.cos() > 0.0, "{yaw_error}");
    assert!(pose.cov.fixed_view::<2, 3>(0, 0).amax() < 1e-12 * var_e, "{:e}", pose.cov);
    assert!((pose.cov[(2, 2)] / var_e - 1.0).abs() < 1e-9);
}

#[test]
fn jacobians_match_central_differences() {
    let x = Vector4::new(0.3, -0.2, 0.1, 0.004);
    let from = Pose { x: 1.5, y: -0.7, th: 0.6 };
    let to = from.compose(0.2, 0.03, 0.07);
    let dt = 0.1;
    let (f, g) = transition_jacobians(&x, &from.iso(), &to.iso(), dt);
    let h = 1e-6;
    for k in 0..4 {
        let mut dx = Vector4::zeros();
        dx[k] = h;
        let col = (transition(&(x + dx), &from.iso(), &to.iso(), dt, &Vector3::zeros())
            - transition(&(x - dx), &from.iso(), &to.iso(), dt, &Vector3::zeros()))
            / (2.0 * h);
        assert!((col - f.column(k)).amax() < 1e-8, "F column {k}: {col:?} vs {:?}", f.column(k));
    }
    for k in 0..3 {
        let mut dw = Vector3::zeros();
        dw[k] = h;
        let col = (transition(&x, &from.iso(), &to.iso(), dt, &dw) - transition(&x, &from.iso(), &to.iso(), dt, &-dw))
            / (2.0 * h);
        assert!((col - g.column(k)).amax() < 1e-8, "G column {k}: {col:?} vs {:?}", g.column(k));
    }
    // ∂(E ⊕ P)/∂E of the map pose.
    let state = DriftState::new(x, Matrix4::identity() * 1e-4).unwrap();
    let j = map_pose_jacobian(&state, &to.iso());
    for k in 0..3 {
        let mut dx = Vector4::zeros();
        dx[k] = h;
        let at = |m: Vector4<f64>| {
            let p = map_pose(&DriftState::new(m, Matrix4::zeros()).unwrap(), &to.iso()).pose;
            Vector3::new(p.translation.x, p.translation.y, p.rotation.angle())
        };
        let col = (at(x + dx) - at(x - dx)) / (2.0 * h);
        assert!((col - j.column(k)).amax() < 1e-8, "map Jacobian column {k}: {col:?} vs {:?}", j.column(k));
    }
}

#[test]
fn perfect_odometry_leaves_the_correction_exactly_zero() {
    let c = OdometryErrorConfig::perfect();
    let model = OdometryErrorModel::new(c).unwrap();
    let state = propagate_path(&model, model.initial_state(), &odometry_poses(START, &mixed_path(0.1)), 0.1);
    assert_eq!(*state.cov(), Matrix4::zeros());
    assert!(state.mean().amax() < 1e-12, "{:?}", state.mean());
    let p = START.compose(3.0, 1.0, 0.2).iso();
    let mp = map_pose(&state, &p);
    assert!((mp.pose.translation.vector - p.translation.vector).norm() < 1e-12);
}

#[test]
fn config_defaults_validate_and_each_parameter_is_rejected_by_name() {
    OdometryErrorConfig::default().validate().unwrap();
    type Field = fn(&mut OdometryErrorConfig) -> &mut f64;
    let fields: [(&str, Field, f64); 5] = [
        ("translation_std_m_per_sqrt_m", |c| &mut c.translation_std_m_per_sqrt_m, 1.0),
        ("rotation_std_rad_per_sqrt_rad", |c| &mut c.rotation_std_rad_per_sqrt_rad, 1.0),
        ("rotation_std_rad_per_sqrt_m", |c| &mut c.rotation_std_rad_per_sqrt_m, 1.0),
        ("gyro_bias_walk_rad_per_s_per_sqrt_s", |c| &mut c.gyro_bias_walk_rad_per_s_per_sqrt_s, 0.1),
        ("gyro_bias_std_rad_per_s", |c| &mut c.gyro_bias_std_rad_per_s, 1.0),
    ];
    for (name, field, max) in fields {
        for bad in [-1e-9, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, max * 1.01] {
            let mut c = OdometryErrorConfig::default();
            *field(&mut c) = bad;
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(&format!("`{name}`")), "{name} = {bad}: {e}");
            assert!(OdometryErrorModel::new(c).is_err());
        }
        for good in [0.0, max] {
            let mut c = OdometryErrorConfig::default();
            *field(&mut c) = good;
            c.validate().unwrap();
        }
    }
}

#[test]
fn config_reads_partial_yaml_and_refuses_unknown_keys() {
    let c: OdometryErrorConfig = serde_yaml::from_str("translation_std_m_per_sqrt_m: 0.02").unwrap();
    assert_eq!(c, OdometryErrorConfig { translation_std_m_per_sqrt_m: 0.02, ..Default::default() });
    assert!(serde_yaml::from_str::<OdometryErrorConfig>("translation_std: 0.02").is_err());
}

#[test]
fn planar_block_of_an_odometry_covariance() {
    let mut cov6 = [0.0; 36];
    assert_eq!(planar_pose_covariance(&cov6), None, "all zeros: not filled");
    // x, y, yaw variances 0.04, 0.09, 0.01; cov(x, yaw) = 0.005; z/roll/pitch large.
    for (i, v) in [(0, 0.04), (7, 0.09), (14, 1e6), (21, 1e6), (28, 1e6), (35, 0.01), (5, 0.005), (30, 0.005)] {
        cov6[i] = v;
    }
    let block = planar_pose_covariance(&cov6).unwrap();
    assert_eq!(block, nalgebra::Matrix3::new(0.04, 0.0, 0.005, 0.0, 0.09, 0.0, 0.005, 0.0, 0.01));
    let mut bad = cov6;
    bad[35] = f64::NAN;
    assert_eq!(planar_pose_covariance(&bad), None, "non-finite");
    let mut bad = cov6;
    bad[0] = -1.0;
    assert_eq!(planar_pose_covariance(&bad), None, "-1 = unknown is not PSD");
    let mut bad = cov6;
    bad[5] = 0.05; // |cov(x, yaw)| > √(0.04·0.01) = 0.02, and asymmetric
    assert_eq!(planar_pose_covariance(&bad), None, "asymmetric");
    bad[30] = 0.05;
    assert_eq!(planar_pose_covariance(&bad), None, "symmetric but indefinite");
    // Only the planar block matters: a NaN in z is ignored.
    let mut z_unknown = cov6;
    z_unknown[14] = f64::NAN;
    assert!(planar_pose_covariance(&z_unknown).is_some());
}

#[test]
fn planar_pose_takes_the_heading_of_the_base_x_axis() {
    let p = Isometry3::from_parts(Translation3::new(1.0, 2.0, 3.0), UnitQuaternion::from_euler_angles(0.0, 0.0, 2.5));
    let q = planar_pose(&p);
    assert!((q.translation.vector - Vector2::new(1.0, 2.0)).norm() < 1e-15);
    assert!((q.rotation.angle() - 2.5).abs() < 1e-12);
}

#[test]
fn bad_states_and_steps_are_refused() {
    let mut cov = Matrix4::zeros();
    assert!(matches!(
        DriftState::new(Vector4::new(f64::NAN, 0.0, 0.0, 0.0), cov),
        Err(DriftError::NonFinite { quantity: "mean", .. })
    ));
    cov[(0, 1)] = 1.0;
    assert!(matches!(DriftState::new(Vector4::zeros(), cov), Err(DriftError::NotPositiveSemidefinite { .. })));
    cov[(1, 0)] = 1.0; // symmetric, eigenvalues ±1
    assert!(matches!(DriftState::new(Vector4::zeros(), cov), Err(DriftError::NotPositiveSemidefinite { .. })));
    assert!(DriftState::new(Vector4::zeros(), Matrix4::zeros()).is_ok(), "E exactly known is a valid state");

    let model = OdometryErrorModel::new(OdometryErrorConfig::default()).unwrap();
    let s = model.initial_state();
    let (a, b) = (Isometry2::identity(), Isometry2::new(Vector2::new(1.0, 0.0), 0.0));
    assert_eq!(model.propagate(&s, &a, &b, -0.1), Err(DriftError::NegativeTimeStep(-0.1)));
    assert!(matches!(model.propagate(&s, &a, &b, f64::NAN), Err(DriftError::NonFinite { quantity: "dt_s", .. })));
    let nan = Isometry2::new(Vector2::new(f64::NAN, 0.0), 0.0);
    assert!(matches!(model.propagate(&s, &nan, &b, 0.1), Err(DriftError::NonFinite { quantity: "from", .. })));
    assert!(matches!(model.propagate(&s, &a, &nan, 0.1), Err(DriftError::NonFinite { quantity: "to", .. })));
    assert!(model.propagate(&s, &a, &b, 0.0).is_ok(), "dt = 0 (equal stamps) is allowed");
}
