//! Estimator configuration: one serde struct with defaults and a pure `validate()`.

use serde::{Deserialize, Serialize};

use crate::config::{check_f64, check_integer, ConfigError};
use super::flow::{NaturalFlowSettings, PlainFlowSettings};
use super::mixture::MixtureSettings;
use super::model::NoiseShape;
use super::particle::ParticleSettings;

/// Which estimator updates the landmark belief.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Mixture of Gaussians, each updated by the natural flow (default).
    #[default]
    Mixture,
    /// Single-Gaussian natural flow.
    Natural,
    /// The slides' Monte-Carlo flow.
    Plain,
    /// Extended Kalman filter.
    Ekf,
    /// Unscented Kalman filter.
    Ukf,
    /// Bootstrap particle filter.
    Particle,
}

impl Method {
    /// snake_case name as in the config.
    pub fn name(self) -> &'static str {
        match self {
            Method::Mixture => "mixture",
            Method::Natural => "natural",
            Method::Plain => "plain",
            Method::Ekf => "ekf",
            Method::Ukf => "ukf",
            Method::Particle => "particle",
        }
    }
}

/// Flow settings shared by `natural`, `plain` and `mixture`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// n, Monte-Carlo samples (plain always; natural when `cubature` is false).
    pub samples: usize,
    /// N: plain's Euler steps, natural's iteration limit.
    pub steps: usize,
    /// η, plain's Euler step size.
    pub step_size: f64,
    /// β, natural's largest damped step ∈ (0, 1].
    pub damping: f64,
    /// Stopping tolerance on the change of (μ, Σ), dimensionless.
    pub tolerance: f64,
    /// Natural flow: Gauss–Hermite cubature (bit-for-bit reproducible) instead of samples.
    pub cubature: bool,
    /// Gauss–Hermite nodes per axis (nodes = this^D).
    pub cubature_points_per_axis: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            samples: 256,
            steps: 50,
            step_size: 0.05,
            damping: 1.0,
            tolerance: 1e-6,
            cubature: true,
            cubature_points_per_axis: 5,
        }
    }
}

/// Mixture settings (see [`MixtureSettings`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MixtureConfig {
    /// Components kept between measurements.
    pub max_components: usize,
    /// Components allowed while one measurement is processed.
    pub split_budget: usize,
    /// Nonlinearity index above which a component is split.
    pub split_threshold: f64,
    /// Weight below which a component is dropped.
    pub prune_weight: f64,
    /// Runnalls KL bound (nats per unit weight) below which components merge.
    pub merge_threshold: f64,
}

impl Default for MixtureConfig {
    fn default() -> Self {
        let s = MixtureSettings::default();
        Self {
            max_components: s.max_components,
            split_budget: s.split_budget,
            split_threshold: s.split_threshold,
            prune_weight: s.prune_weight,
            merge_threshold: s.merge_threshold,
        }
    }
}

/// Particle-filter settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParticleConfig {
    /// N, particles.
    pub count: usize,
    /// Resample when ESS < this fraction of N.
    pub resample_threshold: f64,
    /// Liu–West bandwidth h.
    pub roughening: f64,
}

impl Default for ParticleConfig {
    fn default() -> Self {
        let s = ParticleSettings::default();
        Self { count: s.count, resample_threshold: s.resample_threshold, roughening: s.roughening }
    }
}

/// Everything an [`super::Estimator`] needs; YAML/serde with defaults for every key.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EstimatorConfig {
    /// Estimator method.
    pub method: Method,
    /// Shape of the range-noise density (σ² comes with each measurement).
    pub noise_shape: NoiseShape,
    /// Flow settings.
    pub flow: FlowConfig,
    /// Mixture settings.
    pub mixture: MixtureConfig,
    /// Particle-filter settings.
    pub particle: ParticleConfig,
    /// Seed of every random number used by the estimator.
    pub seed: u64,
}

/// Largest flow.samples × flow.steps accepted (a few tens of ms of one update).
pub const MAX_FLOW_EVALUATIONS: usize = 2_000_000;

impl EstimatorConfig {
    /// Checks every parameter against its allowed range (names relative to the
    /// estimator section, e.g. `flow.samples`).
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first offending parameter, its value and the range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let f = &self.flow;
        check_integer("flow.samples", f.samples, 2, 1_000_000)?;
        check_integer("flow.steps", f.steps, 1, 100_000)?;
        // Work bound of one update (likelihood evaluations): the node's loop must not
        // stall for seconds on one range.
        if f.samples.saturating_mul(f.steps) > MAX_FLOW_EVALUATIONS {
            return Err(ConfigError::invalid(
                "flow.samples",
                f.samples,
                &format!("flow.samples x flow.steps ({}) <= {MAX_FLOW_EVALUATIONS}", f.samples.saturating_mul(f.steps)),
            ));
        }
        check_f64("flow.step_size", f.step_size, |v| v > 0.0 && v <= 10.0, "in (0, 10]")?;
        check_f64("flow.damping", f.damping, |v| v > 0.0 && v <= 1.0, "in (0, 1]")?;
        check_f64("flow.tolerance", f.tolerance, |v| v > 0.0 && v < 1.0, "in (0, 1)")?;
        check_integer("flow.cubature_points_per_axis", f.cubature_points_per_axis, 2, 20)?;
        let m = &self.mixture;
        check_integer("mixture.max_components", m.max_components, 1, 64)?;
        if m.split_budget < m.max_components || m.split_budget > 256 {
            return Err(ConfigError::invalid(
                "mixture.split_budget",
                m.split_budget,
                &format!("in [mixture.max_components ({}), 256]", m.max_components),
            ));
        }
        check_f64("mixture.split_threshold", m.split_threshold, |v| v > 0.0, "> 0")?;
        check_f64("mixture.prune_weight", m.prune_weight, |v| (0.0..0.5).contains(&v), "in [0, 0.5)")?;
        check_f64("mixture.merge_threshold", m.merge_threshold, |v| (0.0..=10.0).contains(&v), "in [0, 10]")?;
        let p = &self.particle;
        check_integer("particle.count", p.count, 10, 1_000_000)?;
        check_f64("particle.resample_threshold", p.resample_threshold, |v| v > 0.0 && v <= 1.0, "in (0, 1]")?;
        check_f64("particle.roughening", p.roughening, |v| v > 0.0 && v < 1.0, "in (0, 1)")?;
        match self.noise_shape {
            NoiseShape::StudentT { dof } => check_f64("noise_shape.dof", dof, |v| v > 0.0, "> 0")?,
            NoiseShape::Huber { threshold_sigma } => {
                check_f64("noise_shape.threshold_sigma", threshold_sigma, |v| v > 0.0, "> 0")?
            }
            NoiseShape::Gaussian => {}
        }
        Ok(())
    }

    /// Settings of the natural flow.
    pub fn natural_settings(&self) -> NaturalFlowSettings {
        NaturalFlowSettings { max_iterations: self.flow.steps, damping: self.flow.damping, tolerance: self.flow.tolerance }
    }

    /// Settings of the plain flow.
    pub fn plain_settings(&self) -> PlainFlowSettings {
        PlainFlowSettings {
            samples: self.flow.samples,
            steps: self.flow.steps,
            step_size: self.flow.step_size,
            tolerance: self.flow.tolerance,
        }
    }

    /// Settings of the mixture.
    pub fn mixture_settings(&self) -> MixtureSettings {
        let m = &self.mixture;
        MixtureSettings {
            max_components: m.max_components,
            split_budget: m.split_budget,
            split_threshold: m.split_threshold,
            prune_weight: m.prune_weight,
            merge_threshold: m.merge_threshold,
        }
    }

    /// Settings of the particle filter.
    pub fn particle_settings(&self) -> ParticleSettings {
        ParticleSettings {
            count: self.particle.count,
            resample_threshold: self.particle.resample_threshold,
            roughening: self.particle.roughening,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip_through_yaml() {
        let c = EstimatorConfig::default();
        c.validate().unwrap();
        let yaml = serde_yaml::to_string(&c).unwrap();
        let back: EstimatorConfig = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn partial_yaml_uses_defaults_and_unknown_keys_are_rejected() {
        let c: EstimatorConfig = serde_yaml::from_str("method: ekf\nflow:\n  samples: 64\n").unwrap();
        assert_eq!(c.method, Method::Ekf);
        assert_eq!(c.flow.samples, 64);
        assert_eq!(c.flow.steps, FlowConfig::default().steps);
        assert!(serde_yaml::from_str::<EstimatorConfig>("metod: ekf\n").is_err());
        assert!(serde_yaml::from_str::<EstimatorConfig>("flow:\n  sample: 3\n").is_err());
        let t: EstimatorConfig = serde_yaml::from_str("noise_shape:\n  type: student_t\n  dof: 4.0\n").unwrap();
        assert_eq!(t.noise_shape, NoiseShape::StudentT { dof: 4.0 });
    }

    #[test]
    fn each_rejection_names_the_parameter() {
        type Mutation = Box<dyn Fn(&mut EstimatorConfig)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("flow.samples", Box::new(|c| c.flow.samples = 1)),
            ("flow.steps", Box::new(|c| c.flow.steps = 0)),
            ("flow.step_size", Box::new(|c| c.flow.step_size = f64::NAN)),
            ("flow.damping", Box::new(|c| c.flow.damping = 1.5)),
            ("flow.tolerance", Box::new(|c| c.flow.tolerance = 0.0)),
            ("flow.cubature_points_per_axis", Box::new(|c| c.flow.cubature_points_per_axis = 40)),
            ("mixture.max_components", Box::new(|c| c.mixture.max_components = 0)),
            ("mixture.split_budget", Box::new(|c| c.mixture.split_budget = 2)),
            ("mixture.split_threshold", Box::new(|c| c.mixture.split_threshold = -1.0)),
            ("mixture.prune_weight", Box::new(|c| c.mixture.prune_weight = 0.7)),
            ("mixture.merge_threshold", Box::new(|c| c.mixture.merge_threshold = f64::INFINITY)),
            ("particle.count", Box::new(|c| c.particle.count = 3)),
            ("particle.resample_threshold", Box::new(|c| c.particle.resample_threshold = 0.0)),
            ("particle.roughening", Box::new(|c| c.particle.roughening = 1.0)),
            ("noise_shape.dof", Box::new(|c| c.noise_shape = NoiseShape::StudentT { dof: 0.0 })),
        ];
        for (name, mutate) in cases {
            let mut c = EstimatorConfig::default();
            mutate(&mut c);
            match c.validate() {
                Err(ConfigError::Invalid { parameter, .. }) => assert_eq!(parameter, name),
                other => panic!("{name}: expected ConfigError::Invalid, got {other:?}"),
            }
        }
    }
}
