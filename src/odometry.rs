//! A time-ordered buffer of robot poses that answers "where was the sensor at time t".
//!
//! Poses are base-in-odometry-frame isometries stamped in seconds. [`OdometryBuffer::pose_at`]
//! interpolates between the two poses around `t` (position linearly, orientation by
//! slerp). A `t` after the newest pose is refused (the caller may wait for more
//! odometry); one before the oldest gets the oldest pose if within the tolerance and
//! is refused otherwise. Nothing is extrapolated.

use nalgebra::Isometry3;
use std::collections::VecDeque;

/// Why no pose can be given for a time.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum PoseLookupError {
    #[error("no odometry received yet")]
    Empty,
    #[error("stamp {stamp_s:.3} s is {by_s:.3} s older than the oldest buffered odometry")]
    TooOld { stamp_s: f64, by_s: f64 },
    #[error("stamp {stamp_s:.3} s is {by_s:.3} s newer than the newest odometry")]
    TooNew { stamp_s: f64, by_s: f64 },
}

/// Why a pose was not added.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum OdometryRejection {
    #[error("odometry stamp {stamp_s:.3} s is not after the previous one ({last_s:.3} s)")]
    StampBackwards { stamp_s: f64, last_s: f64 },
    #[error("odometry stamp {0} s is not a positive finite time")]
    BadStamp(f64),
    #[error("odometry pose is not finite")]
    NonFinite,
    #[error("odometry moved {distance_m:.3} m and turned {turn_rad:.3} rad in {dt_s:.3} s: beyond the gate's speed bounds")]
    Jump { distance_m: f64, turn_rad: f64, dt_s: f64 },
    #[error("odometry stamp {stamp_s:.3} s is {ahead_s:.3} s ahead of the clock")]
    StampFuture { stamp_s: f64, ahead_s: f64 },
}

/// True when every component of the pose (translation, rotation quaternion) is finite.
pub fn is_finite_pose(pose: &Isometry3<f64>) -> bool {
    pose.translation.vector.iter().chain(pose.rotation.coords.iter()).all(|v| v.is_finite())
}

/// Poses of the last `length_s` seconds (by stamp).
#[derive(Debug, Clone)]
pub struct OdometryBuffer {
    length_s: f64,
    tolerance_s: f64,
    poses: VecDeque<(f64, Isometry3<f64>)>,
}

impl OdometryBuffer {
    /// `length_s`: how much history to keep, s; `tolerance_s`: how far outside the
    /// buffered interval a lookup still gets the nearest pose, s.
    pub fn new(length_s: f64, tolerance_s: f64) -> Self {
        Self {
            length_s,
            tolerance_s,
            poses: VecDeque::new(),
        }
    }

    /// Adds a pose. Stamps must increase strictly (equal stamps are a duplicate).
    ///
    /// # Errors
    /// [`OdometryRejection`] for a non-finite pose or a stamp that does not increase.
    pub fn push(&mut self, stamp_s: f64, pose: Isometry3<f64>) -> Result<(), OdometryRejection> {
        if !(stamp_s.is_finite() && stamp_s > 0.0) {
            return Err(OdometryRejection::BadStamp(stamp_s));
        }
        if !is_finite_pose(&pose) {
            return Err(OdometryRejection::NonFinite);
        }
        if let Some(&(last_s, _)) = self.poses.back() {
            if stamp_s <= last_s {
                return Err(OdometryRejection::StampBackwards { stamp_s, last_s });
            }
        }
        self.poses.push_back((stamp_s, pose));
        while let Some(&(oldest, _)) = self.poses.front() {
            // Keep at least two poses so a lookup between them still works.
            if self.poses.len() > 2 && stamp_s - oldest > self.length_s {
                self.poses.pop_front();
            } else {
                break;
            }
        }
        Ok(())
    }

    /// Number of buffered poses.
    pub fn len(&self) -> usize {
        self.poses.len()
    }

    pub fn is_empty(&self) -> bool {
        self.poses.is_empty()
    }

    /// Stamp of the newest pose, s.
    pub fn newest_stamp(&self) -> Option<f64> {
        self.poses.back().map(|p| p.0)
    }

    /// The pose at `stamp_s`: interpolated between the bracketing poses (exactly the
    /// newest pose at its own stamp), or the oldest pose when `stamp_s` is before it by
    /// at most the tolerance.
    ///
    /// # Errors
    /// [`PoseLookupError`] when the buffer is empty, `stamp_s` is after the newest pose,
    /// or before the oldest by more than the tolerance.
    pub fn pose_at(&self, stamp_s: f64) -> Result<Isometry3<f64>, PoseLookupError> {
        let (first, last) = match (self.poses.front(), self.poses.back()) {
            (Some(f), Some(l)) => (f, l),
            _ => return Err(PoseLookupError::Empty),
        };
        if stamp_s <= first.0 {
            let by_s = first.0 - stamp_s;
            return if by_s <= self.tolerance_s {
                Ok(first.1)
            } else {
                Err(PoseLookupError::TooOld { stamp_s, by_s })
            };
        }
        if stamp_s >= last.0 {
            // Holding the newest pose would fuse a range with where the robot was, not
            // where it is; the odometry that covers the stamp is usually milliseconds away.
            return if stamp_s == last.0 {
                Ok(last.1)
            } else {
                Err(PoseLookupError::TooNew { stamp_s, by_s: stamp_s - last.0 })
            };
        }
        // First pose with a stamp > t; the buffer is sorted by construction.
        let i = self.poses.partition_point(|p| p.0 <= stamp_s);
        let (t0, p0) = self.poses[i - 1];
        let (t1, p1) = self.poses[i];
        let a = (stamp_s - t0) / (t1 - t0);
        Ok(p0.lerp_slerp(&p1, a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Translation3, UnitQuaternion, Vector3};

    fn pose(x: f64, y: f64, yaw: f64) -> Isometry3<f64> {
        Isometry3::from_parts(
            Translation3::new(x, y, 0.0),
            UnitQuaternion::from_euler_angles(0.0, 0.0, yaw),
        )
    }

    #[test]
    fn interpolates_position_and_heading() {
        let mut b = OdometryBuffer::new(10.0, 0.05);
        b.push(1.0, pose(0.0, 0.0, 0.0)).unwrap();
        b.push(2.0, pose(2.0, 4.0, 1.0)).unwrap();
        let p = b.pose_at(1.25).unwrap();
        assert!((p.translation.vector - Vector3::new(0.5, 1.0, 0.0)).norm() < 1e-12);
        assert!((p.rotation.euler_angles().2 - 0.25).abs() < 1e-12);
    }

    #[test]
    fn refuses_outside_the_buffer_beyond_tolerance() {
        let mut b = OdometryBuffer::new(10.0, 0.05);
        assert_eq!(b.pose_at(1.0), Err(PoseLookupError::Empty));
        b.push(1.0, pose(0.0, 0.0, 0.0)).unwrap();
        b.push(2.0, pose(1.0, 0.0, 0.0)).unwrap();
        assert!(b.pose_at(0.97).is_ok());
        assert!(matches!(b.pose_at(0.9), Err(PoseLookupError::TooOld { .. })));
        assert!(b.pose_at(2.0).is_ok());
        assert!(matches!(b.pose_at(2.001), Err(PoseLookupError::TooNew { .. })));
    }

    #[test]
    fn rejects_backwards_duplicate_and_non_finite() {
        let mut b = OdometryBuffer::new(10.0, 0.05);
        b.push(2.0, pose(0.0, 0.0, 0.0)).unwrap();
        assert!(matches!(b.push(1.0, pose(0.0, 0.0, 0.0)), Err(OdometryRejection::StampBackwards { .. })));
        assert!(matches!(b.push(2.0, pose(0.0, 0.0, 0.0)), Err(OdometryRejection::StampBackwards { .. })));
        assert_eq!(b.push(3.0, pose(f64::NAN, 0.0, 0.0)), Err(OdometryRejection::NonFinite));
        assert_eq!(b.push(0.0, pose(0.0, 0.0, 0.0)), Err(OdometryRejection::BadStamp(0.0)));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn keeps_only_the_configured_history() {
        let mut b = OdometryBuffer::new(1.0, 0.0);
        for k in 1..=50 {
            b.push(k as f64 * 0.1, pose(k as f64, 0.0, 0.0)).unwrap();
        }
        assert!(b.len() <= 12, "{}", b.len());
        assert!(b.pose_at(4.5).is_ok());
        assert!(b.pose_at(3.0).is_err());
    }
}
