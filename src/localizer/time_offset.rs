//! Detects a systematic offset between the range stamps and the odometry clock (a
//! radio stamping on its own clock, a driver stamping on receipt): on real data a
//! range stamped 2 s late gives a confidently wrong landmark, the calibration
//! absorbing the lag. A range stamped δ after it was measured reads the distance of
//! δ earlier: z ≈ d(t) − v_r·δ, with v_r = u·ẋ the sensor's speed away from the
//! landmark (u the unit vector landmark → sensor). So the innovations r = z − ẑ of
//! tracked landmarks regress on −v_r with slope δ; weighted least squares over every
//! fused range (weights 1/S, S the innovation variance):
//!
//! ```text
//! δ̂ = −Σ r·v_r/S / Σ v_r²/S,        var(δ̂) = 1 / Σ v_r²/S
//! ```
//!
//! O(1) per range. Reported in the diagnostics (WARN with the offset in the message)
//! and the replay report; "suspected" when δ̂ is beyond 4 standard deviations and
//! 50 ms. The landmark estimates absorb part of an offset, so δ̂ errs towards 0 (2 s
//! reads as 1.8 s in `tests/range_time_offset.rs`): a detector, not a correction. Some
//! paths cannot show an offset at all: on a circle at constant speed a lag is a
//! rotation of the whole path, which landmarks rotated the other way explain exactly.
//! Odometry drift that grows with the motion correlates with v_r too: Plaza1's dead
//! reckoning taken as exact reads +0.12 ± 0.01 s (its ground truth: +0.01 ± 0.01 s), so
//! the report names both causes.

/// Smallest |δ̂| reported as an offset, s (below: within the jitter of ordinary
/// driver stamps).
pub const MIN_REPORTED_OFFSET_S: f64 = 0.05;
/// Standard deviations beyond which δ̂ is an offset.
pub const OFFSET_SIGMAS: f64 = 4.0;

/// The running weighted least-squares sums (module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RangeTimeOffset {
    /// Σ r·v_r/S, m²/s / m².
    sum_rv: f64,
    /// Σ v_r²/S, 1/s².
    sum_vv: f64,
    /// Ranges used.
    count: u64,
}

/// The estimate: δ̂ (s, positive = range stamps late), its standard deviation and
/// the number of ranges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeOffsetEstimate {
    pub offset_s: f64,
    pub std_s: f64,
    pub ranges: u64,
}

impl TimeOffsetEstimate {
    /// Whether the offset is established (module doc).
    pub fn suspected(&self) -> bool {
        self.offset_s.abs() > OFFSET_SIGMAS * self.std_s && self.offset_s.abs() > MIN_REPORTED_OFFSET_S
    }
}

impl RangeTimeOffset {
    /// Adds one fused range: innovation `innovation_m` = z − ẑ (before the update), its
    /// variance `innovation_var_m2` = S, and the sensor's speed away from the landmark
    /// `radial_speed_mps`. Non-finite or non-positive-variance inputs are ignored.
    pub fn add(&mut self, innovation_m: f64, innovation_var_m2: f64, radial_speed_mps: f64) {
        if !(innovation_m.is_finite() && radial_speed_mps.is_finite() && innovation_var_m2.is_finite() && innovation_var_m2 > 0.0) {
            return;
        }
        self.sum_rv += innovation_m * radial_speed_mps / innovation_var_m2;
        self.sum_vv += radial_speed_mps * radial_speed_mps / innovation_var_m2;
        self.count += 1;
    }

    /// δ̂ and its standard deviation, once the robot has moved along some line of sight.
    pub fn estimate(&self) -> Option<TimeOffsetEstimate> {
        (self.sum_vv > 0.0).then(|| TimeOffsetEstimate {
            offset_s: -self.sum_rv / self.sum_vv,
            std_s: self.sum_vv.sqrt().recip(),
            ranges: self.count,
        })
    }
}
