//! Gaussian flow: minimise J(μ, Σ) = KL(q ‖ p(·|z)) + const
//! = −E_q[ln p(z|s)] + KL(q ‖ N(μ₀, Σ₀)) over q = N(μ, Σ), for one measurement.
//!
//! * [`plain_flow_update`]: the slides' Monte-Carlo algorithm, Euler steps of size η on
//!   (μ, Σ) with fresh samples each step, the score-function mean gradient
//!   ∇_μ KL = −Σ⁻¹ E[(s−μ) ln p(s,z)] and Price's covariance gradient
//!   ∇_Σ KL = −½[(Σ⁻¹ − Σ₀⁻¹) + E[∇²ₛ ln p(z|s)]] with the analytic Hessian.
//! * [`natural_flow_update`]: natural-gradient iteration in precision form, see its doc.

use nalgebra::{Cholesky, Const, SMatrix, SVector};
use rand::Rng;
use rand_distr::StandardNormal;

use super::belief::{cholesky, ln_det, log_density_with, symmetrise, GaussianBelief};
use super::cubature::StandardNode;
use super::error::EstimatorError;
use super::model::{Block, MeasurementModel, BLOCK};

/// Work and outcome of one flow update.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct FlowStats {
    /// Iterations (flow steps) taken.
    pub iterations: usize,
    /// True when the stopping rule fired before the iteration limit.
    pub converged: bool,
    /// Log-likelihood evaluations spent.
    pub evaluations: usize,
    /// ELBO = E_q[ln p(z|s)] − KL(q ‖ prior) ≤ ln p(z), nats (natural flow only; NaN-free,
    /// `f64::NEG_INFINITY` when not computed).
    pub elbo: f64,
}

/// Settings of [`natural_flow_update`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NaturalFlowSettings {
    /// Upper bound on iterations (work bound).
    pub max_iterations: usize,
    /// Largest step β ∈ (0, 1]; halved by the line search when J would increase.
    pub damping: f64,
    /// Stop when the change a full step would make, ‖L⁻¹Δμ‖ + ‖L⁻¹ΔΛL⁻ᵀ‖_F in whitened
    /// coordinates (Λ = LLᵀ), is below this (dimensionless).
    pub tolerance: f64,
}

impl Default for NaturalFlowSettings {
    fn default() -> Self {
        Self { max_iterations: 50, damping: 1.0, tolerance: 1e-6 }
    }
}

/// Settings of [`plain_flow_update`] (the slides' n, N, η).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlainFlowSettings {
    /// n, samples per step.
    pub samples: usize,
    /// N, Euler steps.
    pub steps: usize,
    /// η, step size (time units of the flow).
    pub step_size: f64,
    /// Reported `converged` when the last step moved less than this (same metric as natural).
    pub tolerance: f64,
}

/// Line-search halvings of β before the natural flow declares itself stationary.
const MAX_HALVINGS: usize = 30;

/// One point of the natural iteration: q = N(μ, Λ⁻¹) with Λ = L Lᵀ.
struct Iterate<const D: usize> {
    mean: SVector<f64, D>,
    precision: SMatrix<f64, D, D>,
    /// L, lower Cholesky factor of Λ.
    l: SMatrix<f64, D, D>,
    /// L⁻ᵀ: s = μ + L⁻ᵀ ε has covariance Σ = L⁻ᵀ L⁻¹.
    l_inv_t: SMatrix<f64, D, D>,
    cov: SMatrix<f64, D, D>,
    ln_det_cov: f64,
}

impl<const D: usize> Iterate<D> {
    fn from_precision(precision: SMatrix<f64, D, D>) -> Option<(Cholesky<f64, Const<D>>, SMatrix<f64, D, D>)> {
        let precision = symmetrise(&precision);
        let chol = cholesky(&precision, "precision").ok()?;
        Some((chol, precision))
    }

    fn new(mean: SVector<f64, D>, chol: &Cholesky<f64, Const<D>>, precision: SMatrix<f64, D, D>) -> Option<Self> {
        let l = chol.l();
        let l_inv_t = l.transpose().solve_upper_triangular(&SMatrix::identity())?;
        let cov = symmetrise(&(l_inv_t * l_inv_t.transpose()));
        let ln_det_cov = -ln_det(chol);
        let finite = mean.iter().chain(cov.iter()).all(|v| v.is_finite()) && ln_det_cov.is_finite();
        finite.then_some(Self { mean, precision, l, l_inv_t, cov, ln_det_cov })
    }
}

/// Cubature sums at one iterate: E[ln p], E[∇ ln p], E[ε ∇ ln pᵀ].
struct Expectations<const D: usize> {
    log_lik: f64,
    grad: SVector<f64, D>,
    eps_grad: SMatrix<f64, D, D>,
}

/// Cubature sums at one iterate, Σᵢ wᵢ (ln p, ∇ln p, εᵢ∇ln pᵀ)(μ + L⁻ᵀεᵢ), in the
/// widest vector registers the CPU has (checked at run time; the sums do not depend on
/// it, see [`expectations_blocks`]).
#[inline]
fn expectations<const D: usize, M: LogLikelihood<D>>(
    model: &M,
    it: &Iterate<D>,
    nodes: &NodeBlocks<'_, D>,
) -> Expectations<D> {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::has_avx2_fma() {
        // SAFETY: the features `expectations_avx2` is compiled for were just detected.
        return unsafe { expectations_avx2(model, it, nodes) };
    }
    expectations_blocks(model, it, nodes)
}

/// [`expectations_blocks`] compiled for AVX2 (4 f64 lanes a register instead of SSE2's
/// 2). No `mul_add` is written and Rust never fuses a·b + c into an FMA by itself, so
/// this computes the same bits as the baseline build.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn expectations_avx2<const D: usize, M: LogLikelihood<D>>(
    model: &M,
    it: &Iterate<D>,
    nodes: &NodeBlocks<'_, D>,
) -> Expectations<D> {
    expectations_blocks(model, it, nodes)
}

/// The nodes of one flow update in blocks of [`BLOCK`], the first [`SOA_BLOCKS`] of
/// them also in coordinate arrays (εᵏⱼ, wⱼ), copied once since the nodes are the same
/// at every iteration (the rest are copied block by block at each evaluation).
struct NodeBlocks<'a, const D: usize> {
    nodes: &'a [StandardNode<D>],
    soa: [([Block; D], Block); SOA_BLOCKS],
}

/// Blocks of [`NodeBlocks`] kept in coordinate arrays: 256 nodes, the default sample
/// count (6 KiB of stack in 2-D).
const SOA_BLOCKS: usize = 8;

impl<'a, const D: usize> NodeBlocks<'a, D> {
    fn new(nodes: &'a [StandardNode<D>]) -> Self {
        let mut soa = [([[0.0; BLOCK]; D], [0.0; BLOCK]); SOA_BLOCKS];
        for (block, arrays) in nodes.chunks(BLOCK).zip(soa.iter_mut()) {
            gather(block, arrays);
        }
        Self { nodes, soa }
    }

    fn len(&self) -> usize {
        self.nodes.len()
    }
}

/// Copies a block of nodes into coordinate arrays: ε[k][j] = εⱼₖ, w[j] = wⱼ.
#[inline(always)]
fn gather<const D: usize>(block: &[StandardNode<D>], (eps, w): &mut ([Block; D], Block)) {
    for (j, node) in block.iter().enumerate().take(BLOCK) {
        for k in 0..D {
            eps[k][j] = node.point[k];
        }
        w[j] = node.weight;
    }
}

/// The kernel of [`expectations`], in struct-of-arrays form so that the compiler
/// vectorises it: the nodes in blocks of [`BLOCK`] in coordinate arrays (εᵏⱼ, wⱼ)
/// ([`NodeBlocks`]), mapped to sⱼ = μ + L⁻ᵀεⱼ, evaluated by
/// [`LogLikelihood::log_likelihood_and_gradient_block`], and added into one partial sum
/// per position j in the block (element-wise, so a vector lane computes exactly what a
/// scalar would); the partial sums are added in a fixed order at the end. The order of
/// every addition depends on the node count only, never on the register width. No
/// allocation: the arrays are on the stack.
#[inline(always)]
fn expectations_blocks<const D: usize, M: LogLikelihood<D>>(
    model: &M,
    it: &Iterate<D>,
    nodes: &NodeBlocks<'_, D>,
) -> Expectations<D> {
    let a = &it.l_inv_t;
    let mut sum_l = [0.0; BLOCK];
    let mut sum_g = [[0.0; BLOCK]; D];
    let mut sum_eg = [[[0.0; BLOCK]; D]; D];
    let mut copied = ([[0.0; BLOCK]; D], [0.0; BLOCK]);
    let mut s = [[0.0; BLOCK]; D];
    let mut l = [0.0; BLOCK];
    let mut g = [[0.0; BLOCK]; D];
    for (index, block) in nodes.nodes.chunks(BLOCK).enumerate() {
        let n = block.len().min(BLOCK);
        let (eps, w) = match nodes.soa.get(index) {
            Some(arrays) => arrays,
            None => {
                gather(block, &mut copied);
                &copied
            }
        };
        for k in 0..D {
            for j in 0..n {
                let mut t = 0.0;
                for m in 0..D {
                    t += a[(k, m)] * eps[m][j];
                }
                s[k][j] = it.mean[k] + t;
            }
        }
        model.log_likelihood_and_gradient_block(&s, n, &mut l, &mut g);
        for j in 0..n {
            sum_l[j] += w[j] * l[j];
        }
        for b in 0..D {
            for j in 0..n {
                let wg = g[b][j] * w[j];
                sum_g[b][j] += wg;
                for k in 0..D {
                    sum_eg[k][b][j] += eps[k][j] * wg;
                }
            }
        }
    }
    let used = nodes.len().min(BLOCK);
    let mut e = Expectations { log_lik: sum_block(&sum_l, used), grad: SVector::zeros(), eps_grad: SMatrix::zeros() };
    for b in 0..D {
        e.grad[b] = sum_block(&sum_g[b], used);
        for k in 0..D {
            e.eps_grad[(k, b)] = sum_block(&sum_eg[k][b], used);
        }
    }
    e
}

/// Σⱼ p[j] over j < `used` (the entries past it are 0) in a fixed order: four
/// interleaved running sums over groups of four, then (t₀ + t₁) + (t₂ + t₃).
#[inline(always)]
fn sum_block(p: &Block, used: usize) -> f64 {
    let mut t = [0.0; 4];
    for group in p.chunks_exact(4).take(used.div_ceil(4)) {
        for (ti, v) in t.iter_mut().zip(group) {
            *ti += v;
        }
    }
    (t[0] + t[1]) + (t[2] + t[3])
}

/// The natural-gradient step proposed at an iterate: target precision Λ̂ = Λ₀ − E[∇²ln p]
/// (Stein form) and the mean gradient ∇_μ ELBO = E[∇ln p] − Λ₀(μ − μ₀), with its size in
/// whitened coordinates, r = ‖L⁻¹∇_μ‖ + ‖L⁻¹(Λ̂ − Λ)L⁻ᵀ‖_F, the fixed-point residual.
struct Proposal<const D: usize> {
    target: SMatrix<f64, D, D>,
    target_is_spd: bool,
    mean_gradient: SVector<f64, D>,
    residual: f64,
}

fn proposal<const D: usize>(prior: &Prior<D>, it: &Iterate<D>, ex: &Expectations<D>) -> Proposal<D> {
    let expected_hessian = symmetrise(&(it.l * ex.eps_grad));
    let target = symmetrise(&(prior.precision - expected_hessian));
    let target_is_spd = cholesky(&target, "target precision").is_ok();
    let mean_gradient = ex.grad - prior.precision * (it.mean - prior.mean);
    let residual =
        (it.l_inv_t.transpose() * mean_gradient).norm() + (it.l_inv_t.transpose() * (target - it.precision) * it.l_inv_t).norm();
    Proposal { target, target_is_spd, mean_gradient, residual }
}

/// Prior quantities reused by every iteration.
struct Prior<const D: usize> {
    mean: SVector<f64, D>,
    precision: SMatrix<f64, D, D>,
    ln_det_cov: f64,
}

/// J = −E_q[ln p(z|s)] + KL(q ‖ prior).
fn objective<const D: usize>(prior: &Prior<D>, it: &Iterate<D>, log_lik: f64) -> f64 {
    let dm = it.mean - prior.mean;
    let kl = 0.5
        * ((prior.precision * it.cov).trace() + dm.dot(&(prior.precision * dm)) - D as f64 + prior.ln_det_cov
            - it.ln_det_cov);
    -log_lik + kl
}

/// Natural Gaussian flow: the fixed point of
/// Λ = Λ₀ − E_q[∇²ₛ ln p(z|s)] (Price) and E_q[∇ₛ ln p(z|s)] = Λ₀(μ − μ₀) (Bonnet),
/// i.e. the stationary point of KL(q ‖ p(·|z)), reached by damped natural-gradient steps:
///
/// * E_q[∇²ln p] is computed in its first-order (Stein) form Σ⁻¹E[(s−μ)∇ln pᵀ] =
///   L E[ε ∇ln pᵀ], symmetrised: the integrand is bounded (|∇ ln p| ≤ max|ℓ′|), so the
///   1/d singularity of ∇²h at the sensor (whose Monte-Carlo variance is infinite in 2-D)
///   never enters, and it is exact for linear models.
/// * Precision step: Λ' = (1−β)Λ + βΛ̂ when the target Λ̂ = Λ₀ − E[∇²ln p] is SPD (a convex
///   combination of SPD matrices), otherwise Λ' = Λ + βG + ½β² G Σ G with G = Λ̂ − Λ, which
///   equals ½Λ + ½(Λ+βG)Σ(Λ+βG) ≻ 0 (Lin, Schmidt & Khan 2020). Both are SPD by
///   construction and dimensionless in β, so nothing is stiff as Λ grows.
/// * Mean step: μ' = μ + β Λ'⁻¹ (E[∇ ln p] − Λ₀(μ − μ₀)) (Newton-like, Cholesky solve).
/// * β starts at `damping` and is halved until the step is acceptable: J does not increase
///   or the fixed-point residual (whitened size of the proposed step) at least halves. J and
///   the residual are evaluated on the same nodes, so the check is deterministic. (J alone
///   is not enough: with a finite rule the Stein fixed point and the minimiser of the
///   rule's J differ by the rule's error, and a J-only search would stall between them.)
///   β doubles back towards `damping` only after a step accepted at the first try, so a
///   problem that needs damping keeps it instead of oscillating.
/// * The nodes are fixed across iterations (common random numbers or a cubature rule).
///
/// # Errors
/// `NotPositiveDefinite` if the prior covariance is not SPD; `NonFinite` if the
/// likelihood is not finite at the prior's nodes.
pub fn natural_flow_update<const D: usize, M: MeasurementModel<D>>(
    prior: &GaussianBelief<D>,
    model: &M,
    nodes: &[StandardNode<D>],
    settings: &NaturalFlowSettings,
) -> Result<(GaussianBelief<D>, FlowStats), EstimatorError> {
    natural_flow_from(prior, prior, model, nodes, settings)
}

/// ln p(z|s) and its gradient in s: what the natural flow needs of a likelihood. Every
/// [`MeasurementModel`] is one; a [`MeasurementBatch`] is the product of several.
pub trait LogLikelihood<const D: usize> {
    /// (ln p(z|s), ∇ₛ ln p(z|s)).
    fn log_likelihood_and_gradient(&self, s: &SVector<f64, D>) -> (f64, SVector<f64, D>);

    /// The same at the first `n` points of a block in struct-of-arrays form, as
    /// [`MeasurementModel::log_likelihood_gradient_block`] (whose default goes point by
    /// point).
    fn log_likelihood_and_gradient_block(&self, s: &[Block; D], n: usize, l: &mut Block, grad: &mut [Block; D]);
}

impl<const D: usize, M: MeasurementModel<D>> LogLikelihood<D> for M {
    #[inline]
    fn log_likelihood_and_gradient(&self, s: &SVector<f64, D>) -> (f64, SVector<f64, D>) {
        self.log_likelihood_gradient(s)
    }
    #[inline(always)]
    fn log_likelihood_and_gradient_block(&self, s: &[Block; D], n: usize, l: &mut Block, grad: &mut [Block; D]) {
        self.log_likelihood_gradient_block(s, n, l, grad);
    }
}

/// Independent measurements z₁..z_K of one state: ln p = Σₖ ln p(zₖ|s), the
/// measurements of the first slice followed by those of the second (two slices so a
/// window plus one new measurement need not be copied into one).
#[derive(Clone, Copy, Debug)]
pub struct MeasurementBatch<'a, M>(pub &'a [M], pub &'a [M]);

impl<const D: usize, M: MeasurementModel<D>> LogLikelihood<D> for MeasurementBatch<'_, M> {
    fn log_likelihood_and_gradient(&self, s: &SVector<f64, D>) -> (f64, SVector<f64, D>) {
        // Two plain slice folds, not `chain`: with a chained iterator the model's
        // likelihood was no longer inlined (Plaza1 replay 40 % slower).
        let add = |(l, g): (f64, SVector<f64, D>), m: &M| {
            let (lk, gk) = m.log_likelihood_gradient(s);
            (l + lk, g + gk)
        };
        let first = self.0.iter().fold((0.0, SVector::zeros()), add);
        self.1.iter().fold(first, add)
    }

    // Inlined into the kernel so that it is compiled for the kernel's CPU features
    // (an outlined copy would be the baseline build's).
    #[inline(always)]
    fn log_likelihood_and_gradient_block(&self, s: &[Block; D], n: usize, l: &mut Block, grad: &mut [Block; D]) {
        let n = n.min(BLOCK);
        l[..n].fill(0.0);
        grad.iter_mut().for_each(|g| g[..n].fill(0.0));
        let (mut lk, mut gk) = ([0.0; BLOCK], [[0.0; BLOCK]; D]);
        for m in self.0.iter().chain(self.1) {
            m.log_likelihood_gradient_block(s, n, &mut lk, &mut gk);
            for j in 0..n {
                l[j] += lk[j];
            }
            for (g, gm) in grad.iter_mut().zip(&gk) {
                for j in 0..n {
                    g[j] += gm[j];
                }
            }
        }
    }
}

/// The natural flow of [`natural_flow_update`] for the posterior prior × `likelihood`,
/// started at `start` instead of the prior (a warm start: re-solving for the Gaussian
/// closest to the posterior of many measurements from the current belief).
///
/// # Errors
/// As [`natural_flow_update`], for `start` as for the prior.
pub fn natural_flow_from<const D: usize, L: LogLikelihood<D>>(
    prior: &GaussianBelief<D>,
    start: &GaussianBelief<D>,
    model: &L,
    nodes: &[StandardNode<D>],
    settings: &NaturalFlowSettings,
) -> Result<(GaussianBelief<D>, FlowStats), EstimatorError> {
    let prior_chol = prior.cholesky()?;
    let prior_q = Prior {
        mean: prior.mean,
        precision: symmetrise(&prior_chol.solve(&SMatrix::identity())),
        ln_det_cov: ln_det(&prior_chol),
    };
    let start_chol = start.cholesky()?;
    let start_precision = symmetrise(&start_chol.solve(&SMatrix::identity()));
    let (chol, precision) = Iterate::from_precision(start_precision).ok_or_else(|| not_spd("start precision", &start_precision))?;
    let mut it = Iterate::new(start.mean, &chol, precision).ok_or_else(|| not_spd("start precision", &start_precision))?;
    let blocks = NodeBlocks::new(nodes);
    let ex = expectations(model, &it, &blocks);
    let mut j = objective(&prior_q, &it, ex.log_lik);
    if !j.is_finite() {
        return Err(EstimatorError::NonFinite { quantity: "expected log-likelihood at prior", value: j.to_string() });
    }
    let mut stats = FlowStats { evaluations: nodes.len(), ..FlowStats::default() };
    let mut beta = settings.damping;
    let mut prop = proposal(&prior_q, &it, &ex);
    'outer: for _ in 0..settings.max_iterations {
        stats.iterations += 1;
        let mut halvings = 0;
        let (next, next_j, next_prop) = loop {
            let g = prop.target - it.precision;
            let precision = if prop.target_is_spd {
                it.precision * (1.0 - beta) + prop.target * beta
            } else {
                it.precision + g * beta + g * it.cov * g * (0.5 * beta * beta)
            };
            let candidate = Iterate::from_precision(precision).and_then(|(chol, precision)| {
                let mean = it.mean + chol.solve(&prop.mean_gradient) * beta;
                Iterate::new(mean, &chol, precision)
            });
            if let Some(candidate) = candidate {
                let cex = expectations(model, &candidate, &blocks);
                stats.evaluations += nodes.len();
                let cj = objective(&prior_q, &candidate, cex.log_lik);
                if cj.is_finite() {
                    let cprop = proposal(&prior_q, &candidate, &cex);
                    if cj <= j + 1e-12 * (1.0 + j.abs()) || cprop.residual <= 0.5 * prop.residual {
                        break (candidate, cj, cprop);
                    }
                }
            }
            halvings += 1;
            beta *= 0.5;
            if halvings > MAX_HALVINGS {
                // No acceptable step of any size: stop without claiming convergence.
                break 'outer;
            }
        };
        it = next;
        j = next_j;
        prop = next_prop;
        if halvings == 0 {
            beta = (2.0 * beta).min(settings.damping);
        }
        if prop.residual < settings.tolerance {
            stats.converged = true;
            break;
        }
    }
    stats.elbo = -j;
    let posterior = GaussianBelief { mean: it.mean, cov: it.cov };
    debug_assert!(posterior.is_publishable());
    Ok((posterior, stats))
}

fn not_spd<const D: usize>(quantity: &'static str, m: &SMatrix<f64, D, D>) -> EstimatorError {
    EstimatorError::NotPositiveDefinite { quantity, value: super::error::fmt_matrix(m) }
}

/// The slides' Monte-Carlo Gaussian flow, unchanged except for one guard:
/// for k = 0..N−1, draw n fresh samples sᵢ ~ N(μₖ, Σₖ),
/// ∇_μ ≈ −Σₖ⁻¹ (1/n) Σᵢ (sᵢ − μₖ) ln p(sᵢ, z),
/// ∇_Σ ≈ −½[(Σₖ⁻¹ − Σ₀⁻¹) + (1/n) Σᵢ ∇²ₛ ln p(z|sᵢ)],
/// μₖ₊₁ = μₖ − η∇_μ, Σₖ₊₁ = sym(Σₖ − η∇_Σ).
///
/// Guard: if Σₖ₊₁ is not SPD the covariance step is halved (up to 40 times, then Σ is
/// kept); a non-finite mean step is skipped. The work is exactly N·n evaluations.
///
/// # Errors
/// `NotPositiveDefinite` if the prior covariance is not SPD.
pub fn plain_flow_update<const D: usize, M: MeasurementModel<D>, R: Rng>(
    prior: &GaussianBelief<D>,
    model: &M,
    settings: &PlainFlowSettings,
    rng: &mut R,
) -> Result<(GaussianBelief<D>, FlowStats), EstimatorError> {
    let prior_chol = prior.cholesky()?;
    let prior_precision = symmetrise(&prior_chol.solve(&SMatrix::identity()));
    let mut mean = prior.mean;
    let mut cov = prior.cov;
    let mut chol = prior_chol;
    let n = settings.samples.max(1);
    let eta = settings.step_size;
    let mut stats = FlowStats { elbo: f64::NEG_INFINITY, ..FlowStats::default() };
    for _ in 0..settings.steps {
        stats.iterations += 1;
        let l = chol.l();
        let mut score = SVector::<f64, D>::zeros();
        let mut hessian = SMatrix::<f64, D, D>::zeros();
        for _ in 0..n {
            let eps = SVector::<f64, D>::from_fn(|_, _| rng.sample(StandardNormal));
            let s = mean + l * eps;
            let log_joint = log_density_with(&prior_chol, &prior.mean, &s) + model.log_likelihood(&s);
            score += (s - mean) * log_joint;
            hessian += model.log_likelihood_hessian(&s);
        }
        stats.evaluations += n;
        score /= n as f64;
        hessian /= n as f64;
        let cov_inv = symmetrise(&chol.solve(&SMatrix::identity()));
        let grad_mean = -chol.solve(&score);
        let grad_cov = -(cov_inv - prior_precision + hessian) * 0.5;
        let next_mean = mean - grad_mean * eta;
        let mut step = eta;
        let mut next = None;
        for _ in 0..40 {
            let candidate = symmetrise(&(cov - grad_cov * step));
            if let Ok(c) = cholesky(&candidate, "cov") {
                next = Some((candidate, c));
                break;
            }
            step *= 0.5;
        }
        let previous_mean = mean;
        let previous_cov = cov;
        if next_mean.iter().all(|v| v.is_finite()) {
            mean = next_mean;
        }
        if let Some((c, ch)) = next {
            cov = c;
            chol = ch;
        }
        let dm = mean - previous_mean;
        let change = dm.dot(&(cov_inv * dm)).max(0.0).sqrt() + (cov - previous_cov).norm() * cov_inv.norm();
        stats.converged = change < settings.tolerance;
    }
    Ok((GaussianBelief { mean, cov }, stats))
}

/// How E_q[∇²ₛ ln p(z|s)] is computed in [`kl_gradient`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HessianForm {
    /// E[∇²ₛ ln p] with the model's analytic Hessian (Price; the slides' and `plain`'s form).
    Analytic,
    /// Σ⁻¹E[(s−μ)∇ₛ ln pᵀ], symmetrised (Stein; the `natural` flow's form).
    Stein,
}

/// Gradient of KL(q ‖ p(·|z)) with respect to q's mean and covariance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KlGradient<const D: usize> {
    /// ∇_μ KL = Λ₀(μ − μ₀) − E_q[∇ₛ ln p(z|s)] (Bonnet).
    pub mean: SVector<f64, D>,
    /// ∇_Σ KL = −½[Σ⁻¹ − Λ₀ + E_q[∇²ₛ ln p(z|s)]] (Price), a symmetric matrix.
    pub cov: SMatrix<f64, D, D>,
}

/// J(q) = −E_q[ln p(z|s)] + KL(q ‖ prior) = KL(q ‖ p(·|z)) − ln p(z), evaluated on `nodes`.
///
/// # Errors
/// `NotPositiveDefinite` when q or the prior is not SPD.
pub fn kl_objective<const D: usize, M: MeasurementModel<D>>(
    prior: &GaussianBelief<D>,
    q: &GaussianBelief<D>,
    model: &M,
    nodes: &[StandardNode<D>],
) -> Result<f64, EstimatorError> {
    let l = q.cholesky()?.l();
    let e: f64 = nodes.iter().map(|n| n.weight * model.log_likelihood(&(q.mean + l * n.point))).sum();
    Ok(q.kl_divergence(prior)? - e)
}

/// ∇_μ and ∇_Σ of [`kl_objective`] by Bonnet's and Price's theorems, expectations on
/// `nodes` (q = N(μ, LLᵀ), s = μ + Lε). At t = 0 (q = prior), −∇_Σ is the slides' Σ̇(0).
///
/// # Errors
/// `NotPositiveDefinite` when q or the prior is not SPD.
pub fn kl_gradient<const D: usize, M: MeasurementModel<D>>(
    prior: &GaussianBelief<D>,
    q: &GaussianBelief<D>,
    model: &M,
    nodes: &[StandardNode<D>],
    form: HessianForm,
) -> Result<KlGradient<D>, EstimatorError> {
    let chol = q.cholesky()?;
    let l = chol.l();
    let prior_precision = prior.precision()?;
    let cov_inv = symmetrise(&chol.solve(&SMatrix::identity()));
    let mut grad = SVector::<f64, D>::zeros();
    let mut hessian = SMatrix::<f64, D, D>::zeros();
    for n in nodes {
        let s = q.mean + l * n.point;
        let g = model.log_likelihood_gradient(&s).1;
        grad += g * n.weight;
        hessian += match form {
            HessianForm::Analytic => model.log_likelihood_hessian(&s) * n.weight,
            // Σ⁻¹(s − μ) = L⁻ᵀ ε.
            HessianForm::Stein => {
                let white = l.transpose().solve_upper_triangular(&n.point).unwrap_or_else(SVector::zeros);
                white * g.transpose() * n.weight
            }
        };
    }
    let hessian = symmetrise(&hessian);
    Ok(KlGradient {
        mean: prior_precision * (q.mean - prior.mean) - grad,
        cov: -(cov_inv - prior_precision + hessian) * 0.5,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimator::cubature::{antithetic_normal_nodes, gauss_hermite_nodes};
    use crate::estimator::model::{CalibratedRangeModel, CalibratedRangeModel3, JointRangeModel, NoiseShape, RangeModel};
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// ℓ(r) and ℓ′(r), written out from the densities' formulas (independent of
    /// `ScalarNoise`).
    fn reference_slopes(shape: NoiseShape, var: f64, r: f64) -> (f64, f64) {
        let pi = std::f64::consts::PI;
        match shape {
            NoiseShape::Gaussian => (-0.5 * (2.0 * pi * var).ln() - r * r / (2.0 * var), -r / var),
            NoiseShape::StudentT { dof } => {
                let ln_gamma = crate::estimator::model::ln_gamma;
                let c = ln_gamma((dof + 1.0) / 2.0) - ln_gamma(dof / 2.0) - 0.5 * (pi * dof * var).ln();
                (c - (dof + 1.0) / 2.0 * (1.0 + r * r / (dof * var)).ln(), -(dof + 1.0) * r / (dof * var + r * r))
            }
            NoiseShape::Huber { threshold_sigma: k } => {
                let sigma = var.sqrt();
                let c = -0.5 * (2.0 * pi * var).ln();
                if r.abs() <= k * sigma {
                    (c - r * r / (2.0 * var), -r / var)
                } else {
                    (c - k * r.abs() / sigma + k * k / 2.0, if r > 0.0 { -k / sigma } else { k / sigma })
                }
            }
        }
    }

    /// The sums of [`Expectations`] node by node in plain scalar code, with the sums of
    /// the terms' absolute values (the scale of a reassociation error).
    fn reference_expectations<const D: usize>(
        it: &Iterate<D>,
        nodes: &[StandardNode<D>],
        point: impl Fn(&[f64; D]) -> (f64, [f64; D]),
    ) -> ([f64; 2], [[f64; 2]; D], [[[f64; 2]; D]; D]) {
        let mut l = [0.0; 2];
        let mut g = [[0.0; 2]; D];
        let mut eg = [[[0.0; 2]; D]; D];
        for node in nodes {
            let mut s = [0.0; D];
            for (k, sk) in s.iter_mut().enumerate() {
                *sk = it.mean[k] + (0..D).map(|m| it.l_inv_t[(k, m)] * node.point[m]).sum::<f64>();
            }
            let (lj, gj) = point(&s);
            let add = |acc: &mut [f64; 2], v: f64| {
                acc[0] += v;
                acc[1] += v.abs();
            };
            add(&mut l, node.weight * lj);
            for b in 0..D {
                add(&mut g[b], node.weight * gj[b]);
                for k in 0..D {
                    add(&mut eg[k][b], node.weight * node.point[k] * gj[b]);
                }
            }
        }
        (l, g, eg)
    }

    fn assert_close<const D: usize>(e: &Expectations<D>, reference: ([f64; 2], [[f64; 2]; D], [[[f64; 2]; D]; D])) {
        let close = |what: &str, got: f64, [want, scale]: [f64; 2]| {
            assert!((got - want).abs() <= 1e-12 * (scale + 1e-300), "{what}: kernel {got:e}, scalar {want:e} (terms' scale {scale:e})");
        };
        let (l, g, eg) = reference;
        close("E[ln p]", e.log_lik, l);
        for b in 0..D {
            close("E[∇ ln p]", e.grad[b], g[b]);
            for k in 0..D {
                close("E[ε ∇ ln pᵀ]", e.eps_grad[(k, b)], eg[k][b]);
            }
        }
    }

    fn iterate<const D: usize>(mean: SVector<f64, D>, l_cov: SMatrix<f64, D, D>) -> Iterate<D> {
        let cov = l_cov * l_cov.transpose() + SMatrix::<f64, D, D>::identity() * 1e-3;
        let precision = cov.cholesky().expect("SPD").inverse();
        let (chol, precision) = Iterate::from_precision(precision).expect("SPD precision");
        Iterate::new(mean, &chol, precision).expect("finite iterate")
    }

    fn shape_strategy() -> impl Strategy<Value = NoiseShape> {
        prop_oneof![
            Just(NoiseShape::Gaussian),
            (1.0..10.0f64).prop_map(|dof| NoiseShape::StudentT { dof }),
            (0.3..3.0f64).prop_map(|threshold_sigma| NoiseShape::Huber { threshold_sigma }),
        ]
    }

    /// Monte-Carlo node sets of every size up to a few blocks (partial last blocks), or
    /// a Gauss–Hermite rule.
    fn nodes<const D: usize>(count: usize, seed: u64) -> Vec<StandardNode<D>> {
        if count == 0 {
            gauss_hermite_nodes::<D>(3 + (seed % 3) as usize)
        } else {
            antithetic_normal_nodes::<D, _>(count, &mut StdRng::seed_from_u64(seed))
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The vectorised range kernel against a scalar evaluation written here, on
        /// random beliefs, ranges, noise shapes and node sets.
        #[test]
        fn range_kernel_equals_scalar_evaluation(
            mean in prop::array::uniform2(-20.0..20.0f64),
            l_cov in prop::array::uniform4(-4.0..4.0f64),
            sensor in prop::array::uniform2(-20.0..20.0f64),
            range_m in 0.0..40.0f64,
            var in 0.01..10.0f64,
            shape in shape_strategy(),
            count in 0usize..300,
            seed in any::<u64>(),
        ) {
            let it = iterate(SVector::<f64, 2>::from(mean), SMatrix::<f64, 2, 2>::from_column_slice(&l_cov));
            let model = RangeModel::new(SVector::<f64, 2>::from(sensor), range_m, var, shape).unwrap();
            let nodes = nodes::<2>(count, seed);
            let reference = reference_expectations(&it, &nodes, |s| {
                let delta = [s[0] - sensor[0], s[1] - sensor[1]];
                let d = (delta[0] * delta[0] + delta[1] * delta[1]).sqrt();
                let (l, dl) = reference_slopes(shape, var, range_m - d);
                (l, [-dl * delta[0] / d, -dl * delta[1] / d])
            });
            assert_close(&expectations(&model, &it, &NodeBlocks::new(&nodes)), reference);
        }

        /// The same for the calibrated 4-D state θ = (y, s, b): h = s‖y − x‖ + b.
        #[test]
        fn calibrated_kernel_equals_scalar_evaluation(
            mean in prop::array::uniform2(-20.0..20.0f64),
            calibration in (0.8..1.2f64, -1.0..1.0f64),
            l_cov in prop::array::uniform16(-2.0..2.0f64),
            sensor in prop::array::uniform2(-20.0..20.0f64),
            range_m in 0.0..40.0f64,
            var in 0.01..10.0f64,
            shape in shape_strategy(),
            count in 0usize..300,
            seed in any::<u64>(),
        ) {
            let mean = SVector::<f64, 4>::new(mean[0], mean[1], calibration.0, calibration.1);
            let mut l_cov = SMatrix::<f64, 4, 4>::from_column_slice(&l_cov);
            // Calibration spreads of a few per cent and decimetres, as in use.
            l_cov.row_mut(2).scale_mut(0.02);
            l_cov.row_mut(3).scale_mut(0.1);
            let it = iterate(mean, l_cov);
            let model = CalibratedRangeModel::new(SVector::<f64, 2>::from(sensor), range_m, var, shape).unwrap();
            let nodes = nodes::<4>(count, seed);
            let reference = reference_expectations(&it, &nodes, |t| {
                let delta = [t[0] - sensor[0], t[1] - sensor[1]];
                let d = (delta[0] * delta[0] + delta[1] * delta[1]).sqrt();
                let (l, dl) = reference_slopes(shape, var, range_m - (t[2] * d + t[3]));
                (l, [-dl * t[2] * delta[0] / d, -dl * t[2] * delta[1] / d, -dl * d, -dl])
            });
            assert_close(&expectations(&model, &it, &NodeBlocks::new(&nodes)), reference);
        }

        /// The same for the 3-D calibrated state θ = (y₁, y₂, y₃, s, b).
        #[test]
        fn calibrated_3d_kernel_equals_scalar_evaluation(
            mean in prop::array::uniform3(-20.0..20.0f64),
            calibration in (0.8..1.2f64, -1.0..1.0f64),
            l_cov in prop::array::uniform25(-2.0..2.0f64),
            sensor in prop::array::uniform3(-20.0..20.0f64),
            range_m in 0.0..40.0f64,
            var in 0.01..10.0f64,
            shape in shape_strategy(),
            count in 0usize..300,
            seed in any::<u64>(),
        ) {
            let mean = SVector::<f64, 5>::from_column_slice(&[mean[0], mean[1], mean[2], calibration.0, calibration.1]);
            let mut l_cov = SMatrix::<f64, 5, 5>::from_column_slice(&l_cov);
            l_cov.row_mut(3).scale_mut(0.02);
            l_cov.row_mut(4).scale_mut(0.1);
            let it = iterate(mean, l_cov);
            let model = CalibratedRangeModel3::new(SVector::<f64, 3>::from(sensor), range_m, var, shape).unwrap();
            let nodes = nodes::<5>(count, seed);
            let reference = reference_expectations(&it, &nodes, |t| {
                let delta = [t[0] - sensor[0], t[1] - sensor[1], t[2] - sensor[2]];
                let d = (delta[0] * delta[0] + delta[1] * delta[1] + delta[2] * delta[2]).sqrt();
                let (l, dl) = reference_slopes(shape, var, range_m - (t[3] * d + t[4]));
                (l, [-dl * t[3] * delta[0] / d, -dl * t[3] * delta[1] / d, -dl * t[3] * delta[2] / d, -dl * d, -dl])
            });
            assert_close(&expectations(&model, &it, &NodeBlocks::new(&nodes)), reference);
        }

        /// A batch of ranges (two slices) in 3-D: the sum of the ranges' terms.
        #[test]
        fn batch_kernel_equals_scalar_evaluation(
            mean in prop::array::uniform3(-10.0..10.0f64),
            l_cov in prop::array::uniform9(-3.0..3.0f64),
            sensors in prop::array::uniform3(prop::array::uniform3(-10.0..10.0f64)),
            ranges in prop::array::uniform3(0.0..20.0f64),
            count in 0usize..300,
            seed in any::<u64>(),
        ) {
            let it = iterate(SVector::<f64, 3>::from(mean), SMatrix::<f64, 3, 3>::from_column_slice(&l_cov));
            let models: Vec<_> = (0..3)
                .map(|i| RangeModel::new(SVector::<f64, 3>::from(sensors[i]), ranges[i], 0.5, NoiseShape::Gaussian).unwrap())
                .collect();
            let nodes = nodes::<3>(count, seed);
            let reference = reference_expectations(&it, &nodes, |s| {
                let (mut l, mut g) = (0.0, [0.0; 3]);
                for (x, z) in sensors.iter().zip(ranges) {
                    let delta = [s[0] - x[0], s[1] - x[1], s[2] - x[2]];
                    let d = delta.iter().map(|v| v * v).sum::<f64>().sqrt();
                    let (lk, dl) = reference_slopes(NoiseShape::Gaussian, 0.5, z - d);
                    l += lk;
                    for k in 0..3 {
                        g[k] += -dl * delta[k] / d;
                    }
                }
                (l, g)
            });
            assert_close(&expectations(&MeasurementBatch(&models[..2], &models[2..]), &it, &NodeBlocks::new(&nodes)), reference);
        }
    }

    /// Models without a block form (here the 5-D joint range) go point by point through
    /// the same sums.
    #[test]
    fn point_by_point_default_equals_scalar_evaluation() {
        let model = JointRangeModel::<5>::new(SVector::<f64, 2>::new(1.5, -0.7), 4.0, 0.3, NoiseShape::Gaussian).unwrap();
        let mean = SVector::<f64, 5>::from_column_slice(&[0.3, -0.2, 0.4, 3.0, 2.0]);
        let it = iterate(mean, SMatrix::<f64, 5, 5>::identity() * 0.3);
        for count in [1, 31, 32, 33, 256, 300] {
            let nodes = nodes::<5>(count, 7);
            let reference = reference_expectations(&it, &nodes, |s| {
                let (l, g) = model.log_likelihood_gradient(&SVector::<f64, 5>::from_column_slice(s));
                (l, g.into())
            });
            assert_close(&expectations(&model, &it, &NodeBlocks::new(&nodes)), reference);
        }
    }

    /// The run-time choice of the AVX2 build changes no bit of the sums (so results do
    /// not depend on the machine), also with a landmark on the sensor (distance floor).
    #[test]
    fn avx2_and_baseline_kernels_agree_bit_for_bit() {
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::has_avx2_fma() {
            let it = iterate(SVector::<f64, 2>::new(1.0, 1.0), SMatrix::<f64, 2, 2>::new(2.0, 0.0, -0.5, 1.5));
            let mut nodes = nodes::<2>(299, 3);
            nodes.push(StandardNode { point: SVector::zeros(), weight: 0.0 });
            for shape in [NoiseShape::Gaussian, NoiseShape::StudentT { dof: 4.0 }, NoiseShape::Huber { threshold_sigma: 1.0 }] {
                for sensor in [SVector::<f64, 2>::new(0.0, 0.0), SVector::<f64, 2>::new(1.0, 1.0)] {
                    let model = RangeModel::new(sensor, 3.0, 2.0, shape).unwrap();
                    let nodes = NodeBlocks::new(&nodes);
                    let base = expectations_blocks(&model, &it, &nodes);
                    // SAFETY: the features were detected above.
                    let wide = unsafe { expectations_avx2(&model, &it, &nodes) };
                    assert_eq!(base.log_lik.to_bits(), wide.log_lik.to_bits());
                    assert!(base.grad.iter().zip(wide.grad.iter()).all(|(a, b)| a.to_bits() == b.to_bits()));
                    assert!(base.eps_grad.iter().zip(wide.eps_grad.iter()).all(|(a, b)| a.to_bits() == b.to_bits()));
                    assert!(base.log_lik.is_finite() && base.grad.iter().all(|v| v.is_finite()));
                }
                // A batch of ranges (the relinearisation window), inlined into the kernel.
                let window: Vec<_> = (0..7)
                    .map(|k| RangeModel::new(SVector::<f64, 2>::new(k as f64 - 3.0, 0.5 * k as f64), 2.0 + 0.3 * k as f64, 0.5, shape).unwrap())
                    .collect();
                let batch = MeasurementBatch(&window[..4], &window[4..]);
                let nodes = NodeBlocks::new(&nodes);
                let base = expectations_blocks(&batch, &it, &nodes);
                // SAFETY: the features were detected above.
                let wide = unsafe { expectations_avx2(&batch, &it, &nodes) };
                assert_eq!(base.log_lik.to_bits(), wide.log_lik.to_bits());
                assert!(base.grad.iter().zip(wide.grad.iter()).all(|(a, b)| a.to_bits() == b.to_bits()));
                assert!(base.eps_grad.iter().zip(wide.eps_grad.iter()).all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
    }
}
