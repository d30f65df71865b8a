//! CDR decoding against byte buffers built by hand here (not by the encoder under
//! test), following the XCDR1 rules: 4-byte encapsulation header, then each primitive
//! aligned to its size relative to the end of that header.

use landmark_flow::msg::cdr::{CdrError, CdrMessage, CdrReader};
use landmark_flow::msg::{
    message_definition, type_names, GaussianComponentMsg, Header, LandmarkBeliefArrayMsg, LandmarkBeliefMsg,
    OdometryCorrectionMsg, OdometryMsg, PoseStampedMsg, RangeMeasurementMsg, RangeMsg, Stamp, TfMessageMsg,
    TransformStampedMsg,
};

/// Little-endian message bytes assembled field by field with explicit padding.
struct Bytes {
    big_endian: bool,
    buf: Vec<u8>,
}

impl Bytes {
    fn new(big_endian: bool) -> Self {
        Self { big_endian, buf: if big_endian { vec![0, 0, 0, 0] } else { vec![0, 1, 0, 0] } }
    }
    fn pad_to(&mut self, n: usize) -> &mut Self {
        while !(self.buf.len() - 4).is_multiple_of(n) {
            self.buf.push(0xAA); // padding content must not matter
        }
        self
    }
    fn raw(&mut self, le: &[u8]) -> &mut Self {
        let mut b = le.to_vec();
        if self.big_endian {
            b.reverse();
        }
        self.buf.extend(b);
        self
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.pad_to(4).raw(&v.to_le_bytes())
    }
    fn f32(&mut self, v: f32) -> &mut Self {
        self.pad_to(4).raw(&v.to_le_bytes())
    }
    fn f64(&mut self, v: f64) -> &mut Self {
        self.pad_to(8).raw(&v.to_le_bytes())
    }
    fn string(&mut self, s: &str) -> &mut Self {
        self.u32(s.len() as u32 + 1);
        self.buf.extend(s.as_bytes());
        self.buf.push(0);
        self
    }
    fn header(&mut self, sec: u32, nanosec: u32, frame: &str) -> &mut Self {
        self.u32(sec).u32(nanosec).string(frame)
    }
}

fn range_measurement_bytes(big_endian: bool) -> Vec<u8> {
    let mut b = Bytes::new(big_endian);
    b.header(5, 250_000_000, "base").string("a").f64(3.5).f64(0.25);
    b.buf
}

#[test]
fn range_measurement_little_and_big_endian() {
    let le = range_measurement_bytes(false);
    // header 4 + sec 4 + nanosec 4 + "base" (4 + 5) = 21 → pad 3 → id (4 + 2) = 30 → pad 2
    // to 32 (body offset 32, a multiple of 8) → two f64.
    assert_eq!(le.len(), 4 + 32 + 16);
    for bytes in [le, range_measurement_bytes(true)] {
        let m = RangeMeasurementMsg::decode(&bytes).unwrap();
        assert_eq!(m.header.stamp, Stamp { sec: 5, nanosec: 250_000_000 });
        assert_eq!(m.header.stamp.secs(), 5.25);
        assert_eq!(m.header.frame_id, "base");
        assert_eq!(m.landmark_id, "a");
        assert_eq!((m.range, m.variance), (3.5, 0.25));
    }
}

#[test]
fn sensor_msgs_range_jazzy_and_humble() {
    let mut b = Bytes::new(false);
    b.header(7, 0, "beacon_5");
    b.buf.push(1); // radiation_type
    b.f32(0.1).f32(0.0).f32(200.0).f32(65.5).f32(0.04);
    let m = RangeMsg::decode(&b.buf).unwrap();
    assert_eq!(m.header.frame_id, "beacon_5");
    assert_eq!((m.radiation_type, m.field_of_view, m.max_range, m.range, m.variance), (1, 0.1, 200.0, 65.5, 0.04));
    // Humble's Range ends after `range`: variance 0 ("unknown").
    let humble = &b.buf[..b.buf.len() - 4];
    let m = RangeMsg::decode(humble).unwrap();
    assert_eq!((m.range, m.variance), (65.5, 0.0));
}

#[test]
fn odometry_pose_fields() {
    let mut b = Bytes::new(false);
    b.header(1, 500, "odom").string("base_link");
    for v in [1.0, 2.0, 0.5, 0.0, 0.0, 0.6, 0.8] {
        b.f64(v);
    }
    for _ in 0..(36 + 6 + 36) {
        b.f64(9.0);
    }
    let m = OdometryMsg::decode(&b.buf).unwrap();
    assert_eq!(m.header.frame_id, "odom");
    assert_eq!(m.child_frame_id, "base_link");
    assert_eq!(m.pose.position, [1.0, 2.0, 0.5]);
    assert_eq!(m.pose.orientation, [0.0, 0.0, 0.6, 0.8]);
    let pose = m.base_pose();
    assert!((pose.rotation.angle() - 2.0 * 0.6f64.atan2(0.8)).abs() < 1e-12);
}

#[test]
fn every_truncation_is_an_error_naming_the_field_never_a_panic() {
    let full = range_measurement_bytes(false);
    for cut in 0..full.len() {
        let err = RangeMeasurementMsg::decode(&full[..cut]).unwrap_err();
        match err {
            CdrError::NoHeader { .. } => assert!(cut < 4),
            CdrError::Truncated { field, .. } => assert!(!field.is_empty()),
            other => panic!("cut {cut}: {other:?}"),
        }
    }
    let odom = OdometryMsg {
        header: Header { stamp: Stamp { sec: 1, nanosec: 0 }, frame_id: "odom".into() },
        child_frame_id: "base".into(),
        pose: Default::default(),
        pose_covariance: [0.0; 36],
    }
    .encode();
    for cut in 0..odom.len() {
        assert!(OdometryMsg::decode(&odom[..cut]).is_err(), "cut {cut}");
        assert!(RangeMsg::decode(&odom[..cut]).is_err() || cut >= 4);
    }
}

#[test]
fn malformed_strings_sequences_and_encapsulations() {
    let mut bad = range_measurement_bytes(false);
    bad[1] = 0x03; // PL_CDR_LE
    assert_eq!(RangeMeasurementMsg::decode(&bad).unwrap_err(), CdrError::Encapsulation(0x0003));
    let mut no_nul = range_measurement_bytes(false);
    no_nul[4 + 12 + 4] = b'X'; // the NUL of "base"
    assert!(matches!(RangeMeasurementMsg::decode(&no_nul).unwrap_err(), CdrError::StringNotTerminated { field: "header.frame_id", .. }));
    let mut huge = range_measurement_bytes(false);
    huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes()); // frame_id length
    assert!(matches!(RangeMeasurementMsg::decode(&huge).unwrap_err(), CdrError::Truncated { .. }));
    let mut b = Bytes::new(false);
    b.header(1, 0, "odom").u32(1_000_000); // a belief array claiming a million beliefs
    assert!(matches!(LandmarkBeliefArrayMsg::decode(&b.buf).unwrap_err(), CdrError::SequenceTooLong { .. }));
    let mut not_utf8 = Bytes::new(false);
    not_utf8.u32(3);
    not_utf8.buf.extend([0xFF, 0xFE, 0]);
    let mut r = CdrReader::new(&not_utf8.buf).unwrap();
    assert!(matches!(r.string("s").unwrap_err(), CdrError::StringNotUtf8 { .. }));
}

#[test]
fn encoder_layout_matches_hand_built_bytes() {
    let h = Header { stamp: Stamp { sec: 5, nanosec: 250_000_000 }, frame_id: "base".into() };
    let m = RangeMeasurementMsg { header: h.clone(), landmark_id: "a".into(), range: 3.5, variance: 0.25 };
    let mut expected = range_measurement_bytes(false);
    // Our encoder pads with zeros.
    for b in expected.iter_mut() {
        if *b == 0xAA {
            *b = 0;
        }
    }
    assert_eq!(m.encode(), expected);
    let goal = PoseStampedMsg::goal(Header { frame_id: "odom".into(), ..h }, &[0.0, 0.0].into(), &[1.0, 0.0].into());
    // header: 4 + 4 + (4 + 5) = 17 → pad to 24; 7 f64.
    assert_eq!(goal.encode().len(), 4 + 24 + 56);
}

/// `landmark_flow/LandmarkBeliefArray` with two beliefs, built field by field from
/// msg/LandmarkBeliefArray.msg, msg/LandmarkBelief.msg and msg/GaussianComponent.msg.
fn belief_array_bytes(big_endian: bool) -> Vec<u8> {
    let mut b = Bytes::new(big_endian);
    b.header(3, 1, "odom").u32(2);
    for (id, n_components) in [("beacon_1", 1u32), ("b", 0)] {
        b.header(3, 1, "odom").string(id).u8(1).u8(2);
        for v in [1.0, 2.0, 0.0, 1.0, 0.1, 0.0, 0.1, 2.0, 0.0, 0.0, 0.0, 0.0] {
            b.f64(v);
        }
        b.u32(n_components);
        for _ in 0..n_components {
            b.f64(1.0).f64(1.0).f64(2.0).f64(0.0);
            for _ in 0..9 {
                b.f64(0.5);
            }
        }
        b.u32(4).u32(1).u32(7).u8(1).f64(1e-5).u8(0).f64(1.0).f64(0.0).f64(0.0).f64(0.0);
    }
    b.buf
}

#[test]
fn belief_array_matches_hand_built_bytes_both_ways() {
    let belief = LandmarkBeliefMsg {
        header: Header { stamp: Stamp { sec: 3, nanosec: 1 }, frame_id: "odom".into() },
        landmark_id: "beacon_1".into(),
        state: 1,
        dimension: 2,
        mean: [1.0, 2.0, 0.0],
        covariance: [1.0, 0.1, 0.0, 0.1, 2.0, 0.0, 0.0, 0.0, 0.0],
        components: vec![GaussianComponentMsg { weight: 1.0, mean: [1.0, 2.0, 0.0], covariance: [0.5; 9] }],
        measurements_fused: 4,
        measurements_rejected: 1,
        iterations: 7,
        converged: true,
        update_latency_s: 1e-5,
        calibration_estimated: false,
        range_scale: 1.0,
        range_scale_variance: 0.0,
        range_offset_m: 0.0,
        range_offset_variance: 0.0,
    };
    let second = LandmarkBeliefMsg { landmark_id: "b".into(), components: vec![], ..belief.clone() };
    let msg = LandmarkBeliefArrayMsg { header: belief.header.clone(), beliefs: vec![belief, second] };
    for big_endian in [false, true] {
        assert_eq!(LandmarkBeliefArrayMsg::decode(&belief_array_bytes(big_endian)).unwrap(), msg, "big endian {big_endian}");
    }
    let expected: Vec<u8> = belief_array_bytes(false).into_iter().map(|b| if b == 0xAA { 0 } else { b }).collect();
    assert_eq!(msg.encode(), expected);
}

#[test]
fn stamps_convert_like_the_node() {
    for s in [0.0, 1.5, 3856.857346058, 1_700_000_000.123_456_7] {
        let t = Stamp::from_secs(s);
        assert!(t.nanosec < 1_000_000_000);
        assert!((t.secs() - s).abs() <= 1e-9 * s.max(1.0), "{s}");
    }
    assert_eq!(Stamp::from_nanos(3_500_000_001), Stamp { sec: 3, nanosec: 500_000_001 });
}

/// Replaces the hand-built padding (0xAA) by our encoder's zeros.
fn zero_padded(bytes: Vec<u8>) -> Vec<u8> {
    bytes.into_iter().map(|b| if b == 0xAA { 0 } else { b }).collect()
}

/// `landmark_flow/OdometryCorrection`, built field by field from msg/OdometryCorrection.msg.
fn odometry_correction_bytes(big_endian: bool) -> Vec<u8> {
    let mut b = Bytes::new(big_endian);
    b.header(12, 500, "map").string("odom").f64(1.5).f64(-2.0).f64(0.25);
    for k in 0..9 {
        b.f64(k as f64 * 0.01);
    }
    b.f64(1e-3).f64(4e-8);
    b.buf
}

fn odometry_correction() -> OdometryCorrectionMsg {
    OdometryCorrectionMsg {
        header: Header { stamp: Stamp { sec: 12, nanosec: 500 }, frame_id: "map".into() },
        child_frame_id: "odom".into(),
        x_m: 1.5,
        y_m: -2.0,
        yaw_rad: 0.25,
        covariance: std::array::from_fn(|k| k as f64 * 0.01),
        gyro_bias_rad_per_s: 1e-3,
        gyro_bias_variance: 4e-8,
    }
}

#[test]
fn odometry_correction_matches_hand_built_bytes_both_ways() {
    let le = odometry_correction_bytes(false);
    // header 4 + 4 + (4 + 4) = 16, "odom" 4 + 5 = 25 → pad 7 to 32; 14 f64.
    assert_eq!(le.len(), 4 + 32 + 14 * 8);
    for big_endian in [false, true] {
        let m = OdometryCorrectionMsg::decode(&odometry_correction_bytes(big_endian)).unwrap();
        assert_eq!(m, odometry_correction(), "big endian {big_endian}");
    }
    assert_eq!(odometry_correction().encode(), zero_padded(le));
}

/// `tf2_msgs/TFMessage` with two transforms (geometry_msgs/TransformStamped: header,
/// child_frame_id, Transform { Vector3 translation, Quaternion rotation }).
fn tf_message_bytes(big_endian: bool) -> Vec<u8> {
    let mut b = Bytes::new(big_endian);
    b.u32(2);
    b.header(12, 500, "map").string("odom");
    for v in [1.5, -2.0, 0.0, 0.0, 0.0, 0.5, 0.75] {
        b.f64(v);
    }
    b.header(13, 0, "odom").string("base_link");
    for v in [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0] {
        b.f64(v);
    }
    b.buf
}

#[test]
fn tf_message_matches_hand_built_bytes_both_ways() {
    let msg = TfMessageMsg {
        transforms: vec![
            TransformStampedMsg {
                header: Header { stamp: Stamp { sec: 12, nanosec: 500 }, frame_id: "map".into() },
                child_frame_id: "odom".into(),
                translation: [1.5, -2.0, 0.0],
                rotation: [0.0, 0.0, 0.5, 0.75],
            },
            TransformStampedMsg {
                header: Header { stamp: Stamp { sec: 13, nanosec: 0 }, frame_id: "odom".into() },
                child_frame_id: "base_link".into(),
                translation: [0.0; 3],
                rotation: [0.0, 0.0, 0.0, 1.0],
            },
        ],
    };
    for big_endian in [false, true] {
        assert_eq!(TfMessageMsg::decode(&tf_message_bytes(big_endian)).unwrap(), msg, "big endian {big_endian}");
    }
    assert_eq!(msg.encode(), zero_padded(tf_message_bytes(false)));
    // A count that the remaining bytes cannot hold is an error, not an allocation.
    let mut b = Bytes::new(false);
    b.u32(1_000_000);
    assert!(matches!(TfMessageMsg::decode(&b.buf), Err(CdrError::SequenceTooLong { field: "transforms", .. })));
}

#[test]
fn odometry_correction_is_the_map_to_odom_transform() {
    let c = OdometryCorrectionMsg { yaw_rad: std::f64::consts::FRAC_PI_2, ..odometry_correction() };
    let tf = TfMessageMsg::from(&c);
    assert_eq!(tf.transforms.len(), 1);
    let t = &tf.transforms[0];
    assert_eq!((t.header.frame_id.as_str(), t.child_frame_id.as_str()), ("map", "odom"));
    assert_eq!(t.header.stamp, c.header.stamp);
    assert_eq!(t.translation, [1.5, -2.0, 0.0]);
    // A quarter turn about z: (0, 0, sin(π/4), cos(π/4)).
    let h = std::f64::consts::FRAC_1_SQRT_2;
    for (got, want) in t.rotation.iter().zip([0.0, 0.0, h, h]) {
        assert!((got - want).abs() < 1e-15, "{:?}", t.rotation);
    }
    // It maps a point of the odometry frame as the correction says: R(yaw)·p + (x, y).
    let [_, _, qz, qw] = t.rotation;
    let yaw = 2.0 * qz.atan2(qw);
    let p = (1.0, 0.0);
    let mapped = (yaw.cos() * p.0 - yaw.sin() * p.1 + t.translation[0], yaw.sin() * p.0 + yaw.cos() * p.1 + t.translation[1]);
    assert!((mapped.0 - 1.5).abs() < 1e-12 && (mapped.1 - (-1.0)).abs() < 1e-12, "{mapped:?}");
}

/// Every type the replayer writes has a definition in which each field type is
/// primitive or defined in a `MSG:` section (relative names resolve in the package of
/// the section that uses them), the way rosbags and Foxglove read MCAP schemas.
#[test]
fn every_definition_defines_every_type_it_uses() {
    const PRIMITIVES: [&str; 15] = [
        "bool", "byte", "char", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float32",
        "float64", "string", "wstring",
    ];
    let all = [
        type_names::ODOMETRY,
        type_names::RANGE,
        type_names::RANGE_MEASUREMENT,
        type_names::LANDMARK_BELIEF_ARRAY,
        type_names::POSE_WITH_COVARIANCE_STAMPED,
        type_names::POSE_STAMPED,
        type_names::ODOMETRY_CORRECTION,
        type_names::TF_MESSAGE,
    ];
    for type_name in all {
        let text = message_definition(type_name).unwrap_or_else(|| panic!("no definition of {type_name}"));
        let separator = format!("{}\n", "=".repeat(80));
        let mut sections: Vec<(String, &str)> = Vec::new();
        for (k, part) in text.split(&separator).enumerate() {
            if k == 0 {
                let pkg_type = type_name.replace("/msg/", "/");
                sections.push((pkg_type, part));
            } else {
                let (first, body) = part.split_once('\n').unwrap();
                let name = first.strip_prefix("MSG: ").unwrap_or_else(|| panic!("{type_name}: section `{first}`"));
                sections.push((name.to_string(), body));
            }
        }
        let defined: Vec<&str> = sections.iter().map(|(n, _)| n.as_str()).collect();
        for (name, body) in &sections {
            let package = name.split('/').next().unwrap();
            for line in body.lines() {
                let line = line.split('#').next().unwrap().trim();
                let Some(field_type) = line.split_whitespace().next() else { continue };
                if line.contains('=') && !line.contains(' ') {
                    continue;
                }
                let base = field_type.split('[').next().unwrap();
                let base = base.split("<=").next().unwrap();
                if PRIMITIVES.contains(&base) || line.split_whitespace().nth(1).is_some_and(|w| w.contains('=')) {
                    continue;
                }
                let full = if base.contains('/') { base.to_string() } else { format!("{package}/{base}") };
                assert!(defined.contains(&full.as_str()), "{type_name}: `{name}` uses `{full}`, not defined in {defined:?}");
            }
        }
    }
}
