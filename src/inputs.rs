//! Input messages → the core's [`RangeInput`], shared by the live node and the bag
//! replayer. (`landmark_flow/RangeMeasurement` maps field for field: stamp, sensor
//! `header.frame_id`, `landmark_id`, `range`, `variance`; callers write that struct
//! literal.)

use crate::localizer::RangeInput;

/// `sensor_msgs/Range` → [`RangeInput`]. That message has no landmark field and no
/// sensor frame of its own: by this package's convention the landmark id is the
/// message's `header.frame_id` (`landmark_frame_id`), and the sensor frame is the
/// configured `localizer.sensor_frame_id`. A `variance` of 0 (Jazzy's "unknown", and
/// what a pre-Jazzy message decodes to) selects the configured default.
pub fn range_input_from_sensor_msgs_range(
    stamp_s: f64,
    landmark_frame_id: &str,
    range_m: f32,
    variance_m2: f32,
    sensor_frame_id: &str,
) -> RangeInput {
    RangeInput {
        stamp_s,
        frame_id: sensor_frame_id.to_string(),
        landmark_id: landmark_frame_id.to_string(),
        range_m: range_m as f64,
        variance_m2: variance_m2 as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_msgs_range_carries_the_landmark_in_frame_id() {
        let input = range_input_from_sensor_msgs_range(2.5, "beacon_1", 3.25, 0.5, "range_sensor");
        assert_eq!(
            input,
            RangeInput {
                stamp_s: 2.5,
                frame_id: "range_sensor".into(),
                landmark_id: "beacon_1".into(),
                range_m: 3.25,
                variance_m2: 0.5,
            }
        );
    }
}
