//! Bonnet/Price gradients of KL(q ‖ p(·|z)) against central finite differences of the
//! same KL computed by a high-order Gauss–Hermite rule (independent of the flows).

use landmark_flow::estimator::cubature::gauss_hermite_nodes;
use landmark_flow::estimator::flow::{kl_gradient, kl_objective, HessianForm};
use landmark_flow::estimator::{GaussianBelief, MeasurementModel, NoiseShape, RangeModel};
use nalgebra::{Matrix2, Vector2};

fn cases() -> Vec<(GaussianBelief<2>, GaussianBelief<2>, RangeModel<2>)> {
    let prior = GaussianBelief::new(Vector2::new(1.0, 1.0), Matrix2::new(5.5, -1.5, -1.5, 5.5)).unwrap();
    vec![
        // Sensor far from q's mass: the log-likelihood is smooth over q.
        (
            prior,
            GaussianBelief::new(Vector2::new(3.0, -2.0), Matrix2::new(0.8, 0.2, 0.2, 0.5)).unwrap(),
            RangeModel::new(Vector2::new(10.0, 0.0), 6.0, 2.0, NoiseShape::Gaussian).unwrap(),
        ),
        (
            prior,
            GaussianBelief::new(Vector2::new(2.0, 0.5), Matrix2::new(0.3, -0.1, -0.1, 0.6)).unwrap(),
            RangeModel::new(Vector2::new(-6.0, 3.0), 8.5, 0.5, NoiseShape::StudentT { dof: 4.0 }).unwrap(),
        ),
    ]
}

#[test]
fn kl_gradients_match_finite_differences() {
    let nodes = gauss_hermite_nodes::<2>(40);
    for (prior, q, model) in cases() {
        let kl = |q: &GaussianBelief<2>| kl_objective(&prior, q, &model, &nodes).unwrap();
        for form in [HessianForm::Analytic, HessianForm::Stein] {
            let g = kl_gradient(&prior, &q, &model, &nodes, form).unwrap();
            let h = 1e-5;
            for i in 0..2 {
                let mut e = Vector2::zeros();
                e[i] = h;
                let plus = GaussianBelief { mean: q.mean + e, ..q };
                let minus = GaussianBelief { mean: q.mean - e, ..q };
                let fd = (kl(&plus) - kl(&minus)) / (2.0 * h);
                assert!((fd - g.mean[i]).abs() < 1e-6 * (1.0 + fd.abs()), "{form:?} d/dμ{i}: fd {fd} vs {}", g.mean[i]);
            }
            for (i, j) in [(0, 0), (1, 1), (0, 1)] {
                let mut e = Matrix2::zeros();
                e[(i, j)] = h;
                e[(j, i)] = h;
                let plus = GaussianBelief { cov: q.cov + e, ..q };
                let minus = GaussianBelief { cov: q.cov - e, ..q };
                // d KL along the symmetric direction E = ∂/∂Σᵢⱼ + ∂/∂Σⱼᵢ.
                let fd = (kl(&plus) - kl(&minus)) / (2.0 * h);
                let analytic = if i == j { g.cov[(i, i)] } else { 2.0 * g.cov[(i, j)] };
                assert!(
                    (fd - analytic).abs() < 1e-5 * (1.0 + fd.abs()),
                    "{form:?} d/dΣ{i}{j}: fd {fd} vs {analytic}"
                );
            }
        }
    }
}

#[test]
fn slides_score_function_mean_gradient_agrees_with_bonnet_form() {
    // ∇_μ KL = −Σ⁻¹ E[(s−μ) ln p(s, z)] (slides) = Λ₀(μ−μ₀) − E[∇ ln p(z|s)] (Bonnet).
    let nodes = gauss_hermite_nodes::<2>(40);
    for (prior, q, model) in cases() {
        let l = q.cholesky().unwrap().l();
        let mut score = Vector2::zeros();
        for n in &nodes {
            let s = q.mean + l * n.point;
            score += (s - q.mean) * (n.weight * (prior.log_density(&s).unwrap() + model.log_likelihood(&s)));
        }
        let slides = -(q.cholesky().unwrap().solve(&score));
        let bonnet = kl_gradient(&prior, &q, &model, &nodes, HessianForm::Analytic).unwrap().mean;
        assert!((slides - bonnet).amax() < 1e-8 * (1.0 + bonnet.amax()), "{slides:?} vs {bonnet:?}");
    }
}

#[test]
fn initial_covariance_rate_is_half_the_expected_hessian() {
    // Slides, "Step 1": at q = prior, Σ̇(0) = −∇_Σ KL = ½ E_q0[∇² ln p(z|s)].
    let nodes = gauss_hermite_nodes::<2>(30);
    let (prior, _, model) = cases().remove(0);
    let g = kl_gradient(&prior, &prior, &model, &nodes, HessianForm::Analytic).unwrap();
    let l = prior.cholesky().unwrap().l();
    let mut expected = Matrix2::zeros();
    for n in &nodes {
        expected += model.log_likelihood_hessian(&(prior.mean + l * n.point)) * (0.5 * n.weight);
    }
    assert!((-g.cov - expected).amax() < 1e-10, "{:?} vs {expected:?}", -g.cov);
}
