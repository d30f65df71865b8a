//! Where the range sensor sits on the robot: from the static transforms of the TF tree
//! (`/tf_static`, what `robot_state_publisher` or a `static_transform_publisher`
//! broadcast), the way robot_localization and every ROS user expect, with
//! `sensor_offset_m` as the fallback for a frame the tree does not connect.
//!
//! A range's sensor frame is its `header.frame_id`; its mount is the translation of the
//! composed transform `base_frame_id → … → frame` (T = T₁·T₂·…, each edge parent →
//! child as published: the child's pose in the parent). Ranges need only the
//! position (a range has no direction), so the rotation matters only along a chain.

use nalgebra::{Isometry3, Vector3};
use std::collections::BTreeMap;

/// Most static transforms kept (a robot's tree has tens; a flood is refused).
pub const MAX_STATIC_TRANSFORMS: usize = 1000;
/// Longest chain followed from a sensor frame up to the base (a cycle ends there too).
const MAX_CHAIN: usize = 32;
/// Largest mount accepted, metres from the base (as `sensor_offset_m`).
pub const MAX_MOUNT_M: f64 = 100.0;

/// Why a static transform was not stored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MountError {
    #[error("static transform `{parent}` -> `{child}`: {why}")]
    Invalid { parent: String, child: String, why: &'static str },
    #[error("more than {MAX_STATIC_TRANSFORMS} static transforms")]
    TooMany,
}

/// The static transforms received, by child frame (a frame has one parent in TF).
#[derive(Debug, Clone, Default)]
pub struct SensorMounts {
    parents: BTreeMap<String, (String, Isometry3<f64>)>,
}

impl SensorMounts {
    /// Stores (or replaces) the static transform `parent → child`: the child's pose in
    /// the parent frame.
    ///
    /// # Errors
    /// [`MountError`] for an empty or equal frame name, a non-finite transform, a
    /// translation longer than [`MAX_MOUNT_M`], or a new edge past
    /// [`MAX_STATIC_TRANSFORMS`]; nothing is stored then.
    pub fn insert(&mut self, parent: &str, child: &str, transform: Isometry3<f64>) -> Result<(), MountError> {
        let invalid = |why| MountError::Invalid { parent: parent.into(), child: child.into(), why };
        if parent.is_empty() || child.is_empty() || parent == child {
            return Err(invalid("frame names must be non-empty and differ"));
        }
        let finite = transform.translation.vector.iter().chain(transform.rotation.coords.iter()).all(|v| v.is_finite());
        if !finite {
            return Err(invalid("not finite"));
        }
        if transform.translation.vector.norm() > MAX_MOUNT_M {
            return Err(invalid("translation longer than 100 m"));
        }
        if !self.parents.contains_key(child) && self.parents.len() >= MAX_STATIC_TRANSFORMS {
            return Err(MountError::TooMany);
        }
        self.parents.insert(child.to_string(), (parent.to_string(), transform));
        Ok(())
    }

    /// The position of `frame`'s origin in `base_frame` (metres), when the static
    /// transforms connect them; `None` otherwise (also for `frame == base_frame`, whose
    /// mount is not a transform).
    pub fn position_in(&self, base_frame: &str, frame: &str) -> Option<Vector3<f64>> {
        let mut pose = Isometry3::identity();
        let mut at = frame;
        for _ in 0..MAX_CHAIN {
            let (parent, edge) = self.parents.get(at)?;
            pose = edge * pose;
            if parent == base_frame {
                let p = pose.translation.vector;
                return (p.norm() <= MAX_MOUNT_M).then_some(p);
            }
            at = parent;
        }
        None
    }

    /// Number of static transforms stored.
    pub fn len(&self) -> usize {
        self.parents.len()
    }

    /// Whether none is stored.
    pub fn is_empty(&self) -> bool {
        self.parents.is_empty()
    }
}
