//! The node core without ROS: timers on an injected clock, publication order, reset,
//! diagnostics counters, ranges waiting for odometry, and one fused range against an
//! extended Kalman filter written here.

use landmark_flow::msg::{Header, OdometryMsg, Pose, RangeMeasurementMsg, RangeMsg, Stamp};
use landmark_flow::node_config::LandmarkFlowNodeConfig;
use landmark_flow::node_core::{GoalTrigger, Input, NodeCore, Output, PeriodicTimer};
use nalgebra::{Matrix2, Vector2};

fn odom(t: f64, x: f64, y: f64) -> Input {
    Input::Odometry(OdometryMsg {
        header: Header { stamp: Stamp::from_secs(t), frame_id: "odom".into() },
        child_frame_id: "base_link".into(),
        pose: Pose { position: [x, y, 0.0], orientation: [0.0, 0.0, 0.0, 1.0] },
        pose_covariance: [0.0; 36],
    })
}

fn range(t: f64, id: &str, z: f64, variance: f64) -> Input {
    Input::RangeMeasurement {
        topic: "range".into(),
        msg: RangeMeasurementMsg {
            header: Header { stamp: Stamp::from_secs(t), frame_id: "uwb".into() },
            landmark_id: id.into(),
            range: z,
            variance,
        },
    }
}

/// One landmark `a` with prior N((4, 3), diag(4, 1)); goals and timers as given.
fn config(replan_period_s: f64) -> LandmarkFlowNodeConfig {
    let mut c = LandmarkFlowNodeConfig::default();
    c.localizer.priors.ids = vec!["a".into()];
    c.localizer.priors.means_m = vec![4.0, 3.0];
    c.localizer.priors.covs_m2 = vec![4.0, 0.0, 0.0, 1.0];
    c.localizer.estimator.method = landmark_flow::estimator::Method::Ekf;
    c.goal.replan_period_s = replan_period_s;
    c.publish.heatmap = false;
    c.publish.diagnostics_period_s = 1.0;
    c
}

fn goals(outputs: &[Output]) -> Vec<GoalTrigger> {
    outputs.iter().filter_map(|o| if let Output::Goal(g) = o { Some(g.trigger) } else { None }).collect()
}

#[test]
fn timer_fires_once_per_period_and_never_in_bursts() {
    let mut t = PeriodicTimer::new(2.0);
    assert!(!t.due(100.0), "the first call starts the timer");
    // Ticks every 0.1 s for 9.95 s: firings at 102, 104, 106, 108 → 4.
    let fired = (1..=99).filter(|k| t.due(100.0 + 0.1 * *k as f64 + 0.05)).count();
    assert_eq!(fired, 4);
    // A 60 s stall (or gap in a bag): one firing, not 30.
    assert!(t.due(170.0));
    assert!(!t.due(170.5));
    assert!(t.due(172.0), "the next one a period after the missed time");
    // The clock jumps back (bag restarted): restarts, first firing a period later.
    assert!(!t.due(10.0));
    assert!(!t.due(11.9));
    assert!(t.due(12.0));
}

#[test]
fn replan_timer_and_diagnostics_run_on_the_injected_clock() {
    let mut core = NodeCore::new(&config(2.0)).unwrap();
    let mut timer_goals = 0;
    let mut diagnostics = 0;
    // Odometry at 10 Hz for 10 s standing still (the first plan comes from odometry).
    for k in 0..100 {
        let t = 50.0 + 0.1 * k as f64;
        let out = core.handle(t, odom(t, 0.0, 0.0));
        timer_goals += goals(&out).iter().filter(|g| **g == GoalTrigger::Timer).count();
        diagnostics += out.iter().filter(|o| matches!(o, Output::Diagnostics(_))).count();
    }
    // Clock 50.0 .. 59.9: timer firings at 52, 54, 56, 58; diagnostics at 51 .. 59.
    assert_eq!(timer_goals, 4);
    assert_eq!(diagnostics, 9);
}

#[test]
fn a_fused_range_publishes_pose_beliefs_markers_then_goal_in_that_order() {
    let mut c = config(0.0);
    c.goal.replan_on_update = true;
    let mut core = NodeCore::new(&c).unwrap();
    let first = core.handle(1.0, odom(1.0, 0.0, 0.0));
    assert_eq!(goals(&first), vec![GoalTrigger::Odometry], "first odometry plans: no goal yet");
    let out = core.handle(1.0, range(1.0, "a", 5.0, 0.25));
    let kinds: Vec<&str> = out
        .iter()
        .map(|o| match o {
            Output::Range(_) => "range",
            Output::LandmarkPose { .. } => "pose",
            Output::Beliefs(_) => "beliefs",
            Output::Markers(_) => "markers",
            Output::Goal(_) => "goal",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["range", "pose", "beliefs", "markers", "goal"]);
    let Output::Goal(g) = &out[4] else { unreachable!() };
    assert_eq!((g.trigger, g.landmark_id.as_str()), (GoalTrigger::Fused, "a"));
    assert_eq!(g.msg.header.stamp, Stamp::from_secs(1.0), "stamped with the range");
}

/// The core's EKF update of the first range equals the EKF written here:
/// h(y) = ‖y − x‖, H = (μ − x)ᵀ/‖μ − x‖, S = HΣHᵀ + σ², K = ΣHᵀ/S,
/// μ⁺ = μ + K(z − h(μ)), Σ⁺ = (I − KH)Σ. The published pose and belief carry it.
#[test]
fn fused_range_matches_an_independent_ekf_and_is_published_as_such() {
    let mut core = NodeCore::new(&config(0.0)).unwrap();
    core.handle(2.0, odom(2.0, 1.0, -1.0));
    let (z, var) = (4.2, 0.09);
    let out = core.handle(2.0, range(2.0, "a", z, var));
    let (mu, sigma, x) = (Vector2::new(4.0, 3.0), Matrix2::new(4.0, 0.0, 0.0, 1.0), Vector2::new(1.0, -1.0));
    let d = mu - x;
    let h: nalgebra::RowVector2<f64> = d.transpose() / d.norm();
    let s = (h * sigma * h.transpose())[(0, 0)] + var;
    let k: Vector2<f64> = sigma * h.transpose() / s;
    let mean: Vector2<f64> = mu + k * (z - d.norm());
    let cov: Matrix2<f64> = (Matrix2::identity() - k * h) * sigma;
    let pose = out
        .iter()
        .find_map(|o| if let Output::LandmarkPose { msg, .. } = o { Some(msg) } else { None })
        .expect("pose published");
    assert!((pose.pose.position[0] - mean.x).abs() < 1e-9 && (pose.pose.position[1] - mean.y).abs() < 1e-9);
    for (i, j) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        assert!((pose.covariance[i * 6 + j] - cov[(i, j)]).abs() < 1e-9, "Σ[{i}{j}]");
    }
    let beliefs = out.iter().find_map(|o| if let Output::Beliefs(b) = o { Some(b) } else { None }).unwrap();
    assert_eq!(beliefs.beliefs.len(), 1);
    assert!((beliefs.beliefs[0].covariance[4] - cov[(1, 1)]).abs() < 1e-9);
}

#[test]
fn reset_restores_the_configured_prior_and_answers() {
    let mut core = NodeCore::new(&config(0.0)).unwrap();
    core.handle(1.0, odom(1.0, 0.0, 0.0));
    core.handle(1.0, range(1.0, "a", 5.0, 0.25));
    let out = core.handle(3.0, Input::Reset);
    let beliefs = out.iter().find_map(|o| if let Output::Beliefs(b) = o { Some(b) } else { None }).unwrap();
    let a = &beliefs.beliefs[0];
    assert_eq!((a.mean[0], a.mean[1]), (4.0, 3.0), "the configured prior mean");
    assert_eq!(a.covariance, [4.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(a.measurements_fused, 0);
    assert_eq!(beliefs.header.stamp, Stamp::from_secs(3.0), "stamped with the reset time");
    assert!(out.iter().any(|o| matches!(o, Output::Reset { message } if message.contains("1 landmark"))));
}

#[test]
fn diagnostics_count_what_was_sent() {
    let mut core = NodeCore::new(&config(0.0)).unwrap();
    core.handle(1.0, odom(1.0, 0.0, 0.0));
    for (k, z) in [f64::NAN, -1.0, 1e6, f64::INFINITY].into_iter().enumerate() {
        core.handle(1.0, range(1.0 - 0.01 * k as f64, "a", z, 0.25));
    }
    core.handle(1.0, range(1.0, "a", 5.0, 0.25));
    core.handle(1.5, range(0.5, "a", 5.0, 0.25)); // older than the fused one
    let d = core.diagnostics(Stamp::from_secs(2.0));
    let get = |k: &str| d.values.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get("accepted").as_deref(), Some("1"));
    assert_eq!(get("rejected").as_deref(), Some("5"));
    assert_eq!(get("rejected.non_finite_range").as_deref(), Some("2"));
    assert_eq!(get("rejected.negative_range").as_deref(), Some("1"));
    assert_eq!(get("rejected.beyond_max_range").as_deref(), Some("1"));
    assert_eq!(get("rejected.stamp_backwards").as_deref(), Some("1"));
    assert_eq!(get("landmark.a.fused").as_deref(), Some("1"));
    assert_eq!(d.level, landmark_flow::msg::DIAGNOSTIC_WARN);
    // The level is about the last period: the next status, with no new rejection, is OK.
    let first = core.handle(3.0, Input::Tick);
    let second = core.handle(4.5, Input::Tick);
    let levels: Vec<u8> = first
        .iter()
        .chain(&second)
        .filter_map(|o| if let Output::Diagnostics(d) = o { Some(d.level) } else { None })
        .collect();
    assert_eq!(levels, [landmark_flow::msg::DIAGNOSTIC_WARN, landmark_flow::msg::DIAGNOSTIC_OK]);
}

#[test]
fn diagnostics_carry_the_adapters_name() {
    let mut core = NodeCore::new(&config(0.0)).unwrap().with_diagnostics_name("/robot1/landmark_flow_node: inputs");
    core.handle(1.0, Input::Tick);
    let out = core.handle(2.5, Input::Tick);
    let d = out.iter().find_map(|o| if let Output::Diagnostics(d) = o { Some(d) } else { None }).unwrap();
    assert_eq!(d.name, "/robot1/landmark_flow_node: inputs");
}

/// A `sensor_msgs/Range` that arrives before the odometry of its stamp waits, and is
/// reported with its own topic once odometry fuses it.
#[test]
fn a_waiting_range_keeps_its_topic() {
    let mut core = NodeCore::new(&config(0.0)).unwrap();
    core.handle(1.0, odom(1.0, 0.0, 0.0));
    let raw = Input::Range {
        topic: "range_raw".into(),
        msg: RangeMsg {
            header: Header { stamp: Stamp::from_secs(1.5), frame_id: "a".into() },
            radiation_type: 2,
            field_of_view: 0.0,
            min_range: 0.0,
            max_range: 100.0,
            range: 5.0,
            variance: 0.25,
        },
    };
    let waiting = core.handle(1.5, raw);
    assert!(!waiting.iter().any(|o| matches!(o, Output::Range(_))), "waits for odometry");
    assert_eq!(core.localizer().pending(), 1);
    let out = core.handle(1.6, odom(1.6, 0.0, 0.0));
    let fused: Vec<_> = out.iter().filter_map(|o| if let Output::Range(u) = o { Some(u) } else { None }).collect();
    assert_eq!(fused.len(), 1);
    assert_eq!((fused[0].input.topic.as_str(), fused[0].input.landmark_id.as_str()), ("range_raw", "a"));
    assert!(fused[0].result.is_ok());
}

/// One odometry message stamped at the end of time (sec = 2³¹ − 1): rejected against
/// the clock, so later odometry is accepted and ranges fused; with that check off it
/// makes every later message "backwards", and `~/reset` recovers.
#[test]
fn a_far_future_odometry_stamp_is_rejected_and_reset_recovers_without_the_check() {
    let mut core = NodeCore::new(&config(0.0)).unwrap();
    core.handle(1.0, odom(1.0, 0.0, 0.0));
    let out = core.handle(1.1, odom(f64::from(i32::MAX), 0.0, 0.0));
    assert!(out.iter().any(|o| matches!(o, Output::OdometryRejected(r) if r.reason() == "odom_stamp_future")));
    let next = core.handle(1.2, odom(1.2, 0.0, 0.0));
    assert!(next.iter().any(|o| matches!(o, Output::Odometry { .. })));

    let mut c = config(0.0);
    c.localizer.odometry_gate.max_future_s = 0.0;
    let mut core = NodeCore::new(&c).unwrap();
    core.handle(1.0, odom(1.0, 0.0, 0.0));
    core.handle(1.1, odom(f64::from(i32::MAX), 0.0, 0.0));
    let wedged = core.handle(1.2, odom(1.2, 0.0, 0.0));
    assert!(wedged.iter().any(|o| matches!(o, Output::OdometryRejected(r) if r.reason() == "odom_stamp_backwards")));
    core.handle(2.0, Input::Reset);
    let after = core.handle(2.1, odom(2.1, 1.0, -1.0));
    assert!(after.iter().any(|o| matches!(o, Output::Odometry { .. })), "odometry accepted after the reset");
    let out = core.handle(2.1, range(2.1, "a", 4.2, 0.09));
    assert!(out.iter().any(|o| matches!(o, Output::Range(u) if u.result.is_ok())), "ranges fused after the reset");
}

fn raw_range(t: f64, id: &str, z: f32, min_range: f32, max_range: f32) -> Input {
    Input::Range {
        topic: "range_raw".into(),
        msg: RangeMsg {
            header: Header { stamp: Stamp::from_secs(t), frame_id: id.into() },
            radiation_type: 2,
            field_of_view: 0.0,
            min_range,
            max_range,
            range: z,
            variance: 0.25,
        },
    }
}

fn rejection(out: &[Output]) -> Option<&'static str> {
    out.iter().find_map(|o| match o {
        Output::Range(u) => u.result.as_ref().err().map(|r| r.reason()),
        _ => None,
    })
}

/// sensor_msgs/Range: "values < range_min or > range_max should be discarded"; limits
/// that are not an interval are refused; both 0 means the publisher did not fill them.
#[test]
fn sensor_msgs_range_limits_are_honoured() {
    let mut core = NodeCore::new(&config(0.0)).unwrap();
    core.handle(1.0, odom(1.0, 0.0, 0.0));
    core.handle(1.5, odom(1.5, 0.0, 0.0));
    assert_eq!(rejection(&core.handle(1.0, raw_range(1.0, "a", 5.0, 0.2, 4.0))), Some("outside_sensor_limits"));
    assert_eq!(rejection(&core.handle(1.0, raw_range(1.0, "a", 0.1, 0.2, 40.0))), Some("outside_sensor_limits"));
    assert_eq!(rejection(&core.handle(1.0, raw_range(1.0, "a", 5.0, 10.0, 4.0))), Some("bad_sensor_limits"));
    assert_eq!(rejection(&core.handle(1.0, raw_range(1.0, "a", 5.0, 0.0, f32::NAN))), Some("bad_sensor_limits"));
    let inside = core.handle(1.1, raw_range(1.1, "a", 5.0, 0.2, 40.0));
    assert!(inside.iter().any(|o| matches!(o, Output::Range(u) if u.result.is_ok())));
    let unfilled = core.handle(1.2, raw_range(1.2, "a", 5.0, 0.0, 0.0));
    assert!(unfilled.iter().any(|o| matches!(o, Output::Range(u) if u.result.is_ok())));
}

/// The same range (landmark, stamp, value) twice is fused once; the same stamp with
/// another value (a second measurement at that instant) is fused.
#[test]
fn an_exact_duplicate_is_not_fused_twice() {
    let mut core = NodeCore::new(&config(0.0)).unwrap();
    core.handle(1.0, odom(1.0, 0.0, 0.0));
    assert_eq!(rejection(&core.handle(1.0, range(1.0, "a", 5.0, 0.25))), None);
    assert_eq!(rejection(&core.handle(1.0, range(1.0, "a", 5.0, 0.25))), Some("duplicate"));
    assert_eq!(rejection(&core.handle(1.0, range(1.0, "a", 5.1, 0.25))), None);
    assert_eq!(core.localizer().tracks()["a"].measurements_fused, 2);
}

/// `odometry: drifting`: each accepted odometry yields the map → odom correction and
/// the robot's map pose; beliefs and goals are in the map frame. One 1 m step along x
/// in 1 s from the origin (heading 0), model defaults (σ_t = 0.05, σ_rm = 0.01,
/// σ_r = 0.02 (no turn), q_b = 1e-4, σ_b = 1e-3) and the map frame fixed to 1e-6 per
/// axis, by hand: with F = [[1,0,0,0],[0,1,0,dt·q_x=1],[0,0,1,−1],[0,0,0,1]]
/// (lever q = (1, 0)) and noise columns n_t → (1,0,0,0), n_θ → (0,−1,1,0):
/// Σ_E(x,y,yaw) = [[1e-6 + 0.0025, 0, 0], [0, 2e-6 + 1e-4, −1e-6 − 1e-4],
/// [0, ·, 2e-6 + 1e-4]]; the pose X = E ⊕ P with P = (1, 0, 0) has J = [[1,0,0],
/// [0,1,1],[0,0,1]], so Σ_X = [[0.002501, 0, 0], [0, 2e-6, 1e-6], [0, 1e-6, 1.02e-4]]
/// with one noise scale. With the default scales (1, 0.1, 0.01), equal weights before
/// any range and equal means, the published variance of x is the average
/// 1e-6 + 0.0025·(1 + 0.01 + 0.0001)/3.
#[test]
fn drifting_odometry_publishes_the_correction_and_the_robot_pose_in_the_map_frame() {
    let mut c = config(0.0);
    c.localizer.odometry = landmark_flow::localizer::OdometryMode::Drifting;
    c.goal.enabled = false;
    {
        let mut core = NodeCore::new(&c).unwrap();
        core.handle(10.0, odom(10.0, 0.0, 0.0));
        let out = core.handle(11.0, odom(11.0, 1.0, 0.0));
        let pose = out.iter().find_map(|o| if let Output::RobotPose(m) = o { Some(m) } else { None }).unwrap();
        let want = 1e-6 + 0.0025 * (1.0 + 0.01 + 0.0001) / 3.0;
        assert!((pose.covariance[0] - want).abs() < 1e-12, "{} vs {want}", pose.covariance[0]);
    }
    c.localizer.odometry_error.noise_scales = vec![1.0];
    let mut core = NodeCore::new(&c).unwrap();
    let first = core.handle(10.0, odom(10.0, 0.0, 0.0));
    let out = core.handle(11.0, odom(11.0, 1.0, 0.0));
    for outputs in [&first, &out] {
        let correction = outputs.iter().find_map(|o| if let Output::OdometryCorrection(m) = o { Some(m) } else { None });
        let correction = correction.expect("a correction per accepted odometry");
        assert_eq!(correction.header.frame_id, "map");
        assert_eq!(correction.child_frame_id, "odom");
        assert!(correction.x_m.abs() < 1e-12 && correction.y_m.abs() < 1e-12 && correction.yaw_rad.abs() < 1e-12);
    }
    let pose = out.iter().find_map(|o| if let Output::RobotPose(m) = o { Some(m) } else { None }).unwrap();
    assert_eq!(pose.header.frame_id, "map");
    assert_eq!(pose.header.stamp, Stamp::from_secs(11.0));
    assert!((pose.pose.position[0] - 1.0).abs() < 1e-12 && pose.pose.position[1].abs() < 1e-12);
    let want = [[0.002501, 0.0, 0.0], [0.0, 2e-6, 1e-6], [0.0, 1e-6, 1.02e-4]];
    let idx = [0, 1, 5];
    for r in 0..3 {
        for col in 0..3 {
            let got = pose.covariance[6 * idx[r] + idx[col]];
            assert!((got - want[r][col]).abs() < 1e-12, "({r}, {col}): {got} vs {}", want[r][col]);
        }
    }
    let beliefs = core.belief_array(Stamp::from_secs(11.0));
    assert_eq!(beliefs.header.frame_id, "map");
    assert_eq!(beliefs.beliefs.len(), 1);
}

/// `publish.beliefs_period_s`: the belief array (and markers) at most once per period
/// and only when a range was fused since; the landmark's pose after every range.
#[test]
fn the_belief_array_can_be_published_at_a_period() {
    let mut c = config(0.0);
    c.goal.enabled = false;
    c.publish.beliefs_period_s = 1.0;
    let mut core = NodeCore::new(&c).unwrap();
    let (mut beliefs, mut poses) = (0, 0);
    // 10 Hz odometry and ranges from 10.0 to 12.95 s, then 2 s of odometry only.
    for k in 0..50 {
        let t = 10.0 + 0.1 * k as f64;
        let mut out = core.handle(t, odom(t, 0.05 * k as f64, 0.0));
        if t < 13.0 {
            out.extend(core.handle(t, range(t, "a", 4.0, 0.25)));
        }
        beliefs += out.iter().filter(|o| matches!(o, Output::Beliefs(_))).count();
        poses += out.iter().filter(|o| matches!(o, Output::LandmarkPose { .. })).count();
    }
    // The timer starts at 10.0: firings at 11, 12, 13 (ranges fused before each), 14
    // (nothing new since 13: not published).
    assert_eq!(beliefs, 3);
    assert_eq!(poses, 30);
}

/// `ros2 param set` at run time (what the ROS adapter calls): `goal.enabled: false`
/// stops the goals and `true` brings them back; the innovation gate applies to the
/// next range; start-only parameters, unknown names, wrong types and invalid values
/// are refused naming the parameter, and change nothing.
#[test]
fn runtime_parameter_changes_apply_or_are_refused_by_name() {
    use serde_yaml::Value;
    let mut core = NodeCore::new(&config(1.0)).unwrap();
    let goals_between = |core: &mut NodeCore, from: f64, to: f64| {
        let mut n = 0;
        let mut t = from;
        while t < to {
            n += goals(&core.handle(t, odom(t, 0.0, 0.0))).len();
            t += 0.1;
        }
        n
    };
    assert!(goals_between(&mut core, 10.0, 15.0) > 0);
    let off = core.config().with_parameter("goal.enabled", Value::from(false)).unwrap();
    core.reconfigure(&off).unwrap();
    assert_eq!(goals_between(&mut core, 15.0, 25.0), 0, "goal.enabled: false stops the goals");
    let on = core.config().with_parameter("goal.enabled", Value::from(true)).unwrap();
    core.reconfigure(&on).unwrap();
    assert!(goals_between(&mut core, 25.0, 30.0) > 0);

    // A gate of 1e-6 sigma rejects any range that is not exactly predicted.
    let gated = core.config().with_parameter("localizer.innovation_gate_sigma", Value::from(1e-6)).unwrap();
    core.reconfigure(&gated).unwrap();
    core.handle(30.0, odom(30.0, 0.0, 0.0));
    let out = core.handle(30.0, range(30.0, "a", 7.0, 0.25));
    let reason = out.iter().find_map(|o| if let Output::Range(u) = o { u.result.as_ref().err().map(|r| r.reason()) } else { None });
    assert_eq!(reason, Some("innovation_gate"));

    let err = |r: Result<LandmarkFlowNodeConfig, landmark_flow::config::ConfigError>| r.unwrap_err().to_string();
    assert!(err(core.config().with_parameter("goal.no_such", Value::from(1.0))).contains("goal.no_such"));
    assert!(err(core.config().with_parameter("goal.replan_period_s", Value::from("soon"))).contains("replan_period_s"));
    assert!(err(core.config().with_parameter("goal.replan_period_s", Value::from(-1.0))).contains("goal.replan_period_s"));
    let start_only = core.config().with_parameter("localizer.default_noise_std_m", Value::from(0.3)).unwrap();
    let before = core.config().clone();
    let e = core.reconfigure(&start_only).unwrap_err().to_string();
    assert!(e.contains("localizer.default_noise_std_m") && e.contains("restart"), "{e}");
    assert_eq!(core.config(), &before);
}

/// The EKF of the first range to `a` (prior N((4, 3), diag(4, 1))) from sensor `x`.
fn ekf_first_range(x: Vector2<f64>, z: f64, var: f64) -> Vector2<f64> {
    let (mu, sigma) = (Vector2::new(4.0, 3.0), Matrix2::new(4.0, 0.0, 0.0, 1.0));
    let d = mu - x;
    let h: nalgebra::RowVector2<f64> = d.transpose() / d.norm();
    let s = (h * sigma * h.transpose())[(0, 0)] + var;
    mu + sigma * h.transpose() / s * (z - d.norm())
}

/// The sensor mount from `/tf_static`: base_link → mast (0.2, 0, 0.5), turned 90° about
/// z, → uwb (0.3, 0, 0) puts the antenna at (0.2, 0.3, 0.5) in the base (by hand:
/// R(90°)(0.3, 0, 0) = (0, 0.3, 0)); with the robot at (1, −1) heading 90° the sensor is
/// at (1, −1) + R(90°)(0.2, 0.3) = (0.7, −0.8). The first range then equals the EKF
/// from there; a range from a frame the tree does not reach uses `sensor_offset_m`;
/// a non-finite transform is refused and counted.
#[test]
fn the_sensor_mount_comes_from_the_static_tf_tree() {
    use landmark_flow::msg::{TfMessageMsg, TransformStampedMsg};
    let (s45, c45) = (std::f64::consts::FRAC_PI_4.sin(), std::f64::consts::FRAC_PI_4.cos());
    let edge = |parent: &str, child: &str, t: [f64; 3], q: [f64; 4]| TransformStampedMsg {
        header: Header { stamp: Stamp::from_secs(0.0), frame_id: parent.into() },
        child_frame_id: child.into(),
        translation: t,
        rotation: q,
    };
    let mut c = config(0.0);
    c.localizer.sensor_offset_m = vec![-0.5, 0.0, 0.0];
    let tf = TfMessageMsg {
        transforms: vec![
            edge("base_link", "mast", [0.2, 0.0, 0.5], [0.0, 0.0, s45, c45]),
            edge("mast", "uwb", [0.3, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]),
            edge("base_link", "broken", [f64::NAN, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]),
        ],
    };
    let heading_90 = |t: f64| {
        Input::Odometry(OdometryMsg {
            header: Header { stamp: Stamp::from_secs(t), frame_id: "odom".into() },
            child_frame_id: "base_link".into(),
            pose: Pose { position: [1.0, -1.0, 0.0], orientation: [0.0, 0.0, s45, c45] },
            pose_covariance: [0.0; 36],
        })
    };
    let fused_mean = |out: &[Output]| {
        out.iter()
            .find_map(|o| if let Output::LandmarkPose { msg, .. } = o { Some(Vector2::new(msg.pose.position[0], msg.pose.position[1])) } else { None })
            .expect("fused")
    };
    let (z, var) = (4.2, 0.09);

    let mut core = NodeCore::new(&c).unwrap();
    let out = core.handle(1.0, Input::StaticTransforms(tf.clone()));
    assert_eq!(out.iter().filter(|o| matches!(o, Output::StaticTransformRejected(_))).count(), 1);
    assert_eq!(core.localizer().rejected().get("bad_static_transform"), Some(&1));
    core.handle(2.0, heading_90(2.0));
    let got = fused_mean(&core.handle(2.0, range(2.0, "a", z, var)));
    let want = ekf_first_range(Vector2::new(0.7, -0.8), z, var);
    assert!((got - want).amax() < 1e-9, "{got} vs {want}");

    // A frame the tree does not reach: sensor_offset_m, (−0.5, 0) turned 90° → (0, −0.5).
    let mut core = NodeCore::new(&c).unwrap();
    core.handle(1.0, Input::StaticTransforms(tf));
    core.handle(2.0, heading_90(2.0));
    let mut other = range(2.0, "a", z, var);
    if let Input::RangeMeasurement { msg, .. } = &mut other {
        msg.header.frame_id = "sonar".into();
    }
    let got = fused_mean(&core.handle(2.0, other));
    let want = ekf_first_range(Vector2::new(1.0, -1.5), z, var);
    assert!((got - want).amax() < 1e-9, "{got} vs {want}");
}

/// With drifting odometry, the growth of a filled pose covariance is a step's noise,
/// but only when it is physically plausible (within the odometry gate's bounds): a
/// driver's junk covariance (1e300 m²) is ignored, not taken as noise (regression: it
/// made the map frame's covariance 1e300, the joint state unusable — every later range
/// an `estimator_error` — and eventually a panic on a non-PSD block; found by
/// tests/fuzz_node_core.rs).
#[test]
fn drifting_odometry_ignores_an_implausible_covariance_growth() {
    let mut c = config(0.0);
    c.localizer.odometry = landmark_flow::localizer::OdometryMode::Drifting;
    c.goal.enabled = false;
    let odom_cov = |t: f64, x: f64, var: f64| {
        let Input::Odometry(mut m) = odom(t, x, 0.0) else { unreachable!() };
        (m.pose_covariance[0], m.pose_covariance[7], m.pose_covariance[35]) = (var, var, var);
        Input::Odometry(m)
    };
    let mut core = NodeCore::new(&c).unwrap();
    core.handle(10.0, odom_cov(10.0, 0.0, 1e-4));
    let out = core.handle(10.1, odom_cov(10.1, 0.05, 1e300));
    let pose = out.iter().find_map(|o| if let Output::RobotPose(m) = o { Some(m) } else { None }).expect("odometry accepted");
    assert!(pose.covariance[0] < 1e-2 && pose.covariance[35] < 1e-2, "the 1e300 growth was taken as noise: {:?}", pose.covariance);
    // A plausible growth (1e-4 → 2e-4 m² in 0.1 s) is still used.
    let mut core = NodeCore::new(&c).unwrap();
    core.handle(10.0, odom_cov(10.0, 0.0, 1e-4));
    let out = core.handle(10.1, odom_cov(10.1, 0.05, 2e-4));
    let pose = out.iter().find_map(|o| if let Output::RobotPose(m) = o { Some(m) } else { None }).unwrap();
    assert!(pose.covariance[0] >= 1e-4 * (1.0 + 0.01 + 0.0001) / 3.0 * 0.99, "{:?}", &pose.covariance[..2]);
    // Ranges keep fusing after the junk covariance.
    let mut core = NodeCore::new(&c).unwrap();
    core.handle(10.0, odom_cov(10.0, 0.0, 1e-4));
    core.handle(10.1, odom_cov(10.1, 0.05, 1e300));
    for k in 0..5 {
        let t = 10.2 + 0.1 * k as f64;
        core.handle(t, odom_cov(t, 0.05, 1e300));
        let out = core.handle(t, range(t, "a", 5.0, 0.01));
        let fused = out.iter().any(|o| matches!(o, Output::Range(u) if u.result.is_ok()));
        assert!(fused, "range {k} not fused: {out:?}");
    }
}

// ---- Planning inline and on the planning thread --------------------------------------

use landmark_flow::goal_scheduler::{plan, PlanRequest};
use landmark_flow::node_core::PlanFn;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bound of every wait below (never reached when the code is right; a wait is a
/// condition with a bound, not a timing assertion).
const WAIT: Duration = Duration::from_secs(20);

/// A planner that announces each request it starts (on `started`) and then
/// blocks until the test releases it (one `()` on the returned sender per plan); then
/// plans for real. Run on the caller's thread (inline), it would wait for a release
/// that cannot come, and fails after `WAIT` instead of hanging.
fn gated_planner() -> (PlanFn, Receiver<PlanRequest>, Sender<()>) {
    let (started_tx, started) = channel();
    let (release, release_rx) = channel::<()>();
    let (started_tx, release_rx) = (Mutex::new(started_tx), Mutex::new(release_rx));
    let planner: PlanFn = Arc::new(move |request: &PlanRequest| {
        started_tx.lock().unwrap().send(request.clone()).unwrap();
        release_rx.lock().unwrap().recv_timeout(WAIT).expect("the plan was never released: was it run on the caller's thread?");
        plan(request)
    });
    (planner, started, release)
}

fn goal_updates(outputs: &[Output]) -> Vec<landmark_flow::node_core::GoalUpdate> {
    outputs.iter().filter_map(|o| if let Output::Goal(g) = o { Some(g.clone()) } else { None }).collect()
}

fn fused(outputs: &[Output]) -> usize {
    outputs.iter().filter(|o| matches!(o, Output::Range(u) if u.result.is_ok())).count()
}

/// While a plan is running (blocked), the core keeps fusing: every range comes back at
/// once with its outputs; the goal comes afterwards, on the first call after the plan
/// finished, stamped with the data it was planned from.
#[test]
fn the_core_keeps_fusing_while_a_background_plan_runs() {
    let (planner, started, release) = gated_planner();
    let mut core = NodeCore::new(&config(0.0)).unwrap().with_background_planner(planner);
    assert!(core.plans_in_background());
    let out = core.handle(1.0, odom(1.0, 0.0, 0.0));
    assert!(goal_updates(&out).is_empty(), "the plan runs on the thread, not in this call");
    assert_eq!(started.recv_timeout(WAIT).unwrap().seq, 0, "the first odometry asked for a plan");
    for k in 1..=20 {
        let t = 1.0 + 0.05 * k as f64;
        core.handle(t, odom(t, 0.0, 0.0));
        let out = core.handle(t, range(t, "a", 5.0, 0.25));
        assert_eq!(fused(&out), 1, "range {k} fused while the plan is blocked");
        assert!(goal_updates(&out).is_empty());
    }
    assert!(started.try_recv().is_err(), "no goal yet and a plan awaited: odometry does not ask again");
    release.send(()).unwrap();
    assert!(core.wait_for_planner(WAIT));
    let out = core.handle(2.5, Input::Tick);
    let g = goal_updates(&out);
    assert_eq!(g.len(), 1);
    assert_eq!((g[0].trigger, g[0].msg.header.stamp), (GoalTrigger::Odometry, Stamp::from_secs(1.0)));
    assert_eq!(core.goals().current_goal().map(|p| [p.x, p.y]), Some([g[0].msg.pose.position[0], g[0].msg.pose.position[1]]));
}

/// Three requests while the first is running: the second is replaced by the third
/// before it starts and is never planned; the first's goal is emitted before the
/// third's, never after.
#[test]
fn the_newest_plan_request_wins() {
    let (planner, started, release) = gated_planner();
    let mut c = config(0.0);
    c.goal.replan_on_update = true;
    let mut core = NodeCore::new(&c).unwrap().with_background_planner(planner);
    core.handle(1.0, odom(1.0, 0.0, 0.0)); // request 0 (no goal yet): starts, blocks
    assert_eq!(started.recv_timeout(WAIT).unwrap().seq, 0);
    for t in [1.1, 1.2] {
        // Odometry first (a range waits for it); no request: one is awaited.
        core.handle(t, odom(t, 0.0, 0.0));
        core.handle(t, range(t, "a", 5.0, 0.25)); // request 1 (waits), then 2 (replaces 1)
    }
    for _ in 0..3 {
        release.send(()).unwrap();
    }
    assert!(core.wait_for_planner(WAIT));
    let emitted: Vec<Stamp> = goal_updates(&core.handle(1.3, Input::Tick)).iter().map(|g| g.msg.header.stamp).collect();
    assert_eq!(started.recv_timeout(WAIT).unwrap().seq, 2, "request 1 was replaced before it started");
    assert!(started.try_recv().is_err());
    assert_eq!(emitted, [Stamp::from_secs(1.0), Stamp::from_secs(1.2)], "0's goal, then 2's");
}

/// A reset while a plan runs: that plan's goal (of the beliefs before the reset) is
/// never emitted; planning goes on afterwards.
#[test]
fn a_reset_discards_the_plan_in_flight() {
    let (planner, started, release) = gated_planner();
    let mut core = NodeCore::new(&config(0.0)).unwrap().with_background_planner(planner);
    core.handle(1.0, odom(1.0, 0.0, 0.0));
    assert_eq!(started.recv_timeout(WAIT).unwrap().seq, 0);
    core.handle(1.1, Input::Reset);
    release.send(()).unwrap();
    assert!(core.wait_for_planner(WAIT));
    assert!(goal_updates(&core.handle(1.2, Input::Tick)).is_empty(), "the plan from before the reset is dropped");
    assert_eq!(core.goals().current_goal(), None);
    // After the reset there is no goal and none awaited: the next odometry asks again.
    core.handle(1.3, odom(1.3, 0.0, 0.0));
    assert_eq!(started.recv_timeout(WAIT).unwrap().seq, 1);
    release.send(()).unwrap();
    assert!(core.wait_for_planner(WAIT));
    let g = goal_updates(&core.handle(1.4, Input::Tick));
    assert_eq!(g.iter().map(|g| g.msg.header.stamp).collect::<Vec<_>>(), [Stamp::from_secs(1.3)]);
}

/// Dropping the core (the node exiting) while a plan is blocked returns at once: the
/// planning thread is not waited for.
#[test]
fn dropping_the_core_does_not_wait_for_a_running_plan() {
    let (planner, started, _release) = gated_planner();
    let mut core = NodeCore::new(&config(0.0)).unwrap().with_background_planner(planner);
    core.handle(1.0, odom(1.0, 0.0, 0.0));
    assert_eq!(started.recv_timeout(WAIT).unwrap().seq, 0);
    let (done_tx, done) = channel();
    std::thread::spawn(move || {
        drop(core);
        done_tx.send(()).unwrap();
    });
    done.recv_timeout(Duration::from_secs(5)).expect("dropping the core waited for the blocked plan");
}

/// A plan function that panics (a bug) on the thread: its request ends as a failure
/// naming the panic, so the scheduler stops awaiting it and the next odometry asks for
/// a plan again at once (not only the re-plan timer), which then succeeds.
#[test]
fn a_panicking_plan_fails_that_request_and_planning_goes_on() {
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let planner: PlanFn = Arc::new(move |request: &PlanRequest| {
        let first = {
            let mut n = counter.lock().unwrap();
            *n += 1;
            *n == 1
        };
        if first {
            panic!("injected planner bug");
        }
        plan(request)
    });
    let mut core = NodeCore::new(&config(0.0)).unwrap().with_background_planner(planner);
    core.handle(1.0, odom(1.0, 0.0, 0.0)); // request 0: panics on the thread
    assert!(core.wait_for_planner(WAIT));
    let out = core.handle(1.1, Input::Tick);
    let failure = out.iter().find_map(|o| if let Output::PlanFailed { error, .. } = o { Some(error.to_string()) } else { None });
    assert!(failure.as_deref().is_some_and(|e| e.contains("injected planner bug")), "{out:?}");
    core.handle(1.2, odom(1.2, 0.0, 0.0)); // no goal and none awaited: request 1
    assert!(core.wait_for_planner(WAIT));
    assert_eq!(goal_updates(&core.handle(1.3, Input::Tick)).len(), 1);
    assert_eq!(*calls.lock().unwrap(), 2);
}

/// A run-time parameter change reaches the next request, not the one running.
#[test]
fn a_reconfiguration_applies_to_the_next_background_plan() {
    use serde_yaml::Value;
    let (planner, started, release) = gated_planner();
    let mut core = NodeCore::new(&config(1.0)).unwrap().with_background_planner(planner);
    core.handle(1.0, odom(1.0, 0.0, 0.0));
    let first = started.recv_timeout(WAIT).unwrap();
    assert_eq!((first.seq, first.planner.max_step_m), (0, 1.0));
    let short = core.config().with_parameter("planner.max_step_m", Value::from(0.3)).unwrap();
    core.reconfigure(&short).unwrap();
    core.handle(2.0, Input::Tick); // the re-plan timer (1 s): request 1, with 0.3 m
    release.send(()).unwrap();
    release.send(()).unwrap();
    assert!(core.wait_for_planner(WAIT));
    let next = started.recv_timeout(WAIT).unwrap();
    assert_eq!((next.seq, next.planner.max_step_m), (1, 0.3));
    let g = goal_updates(&core.handle(2.1, Input::Tick));
    let step = |g: &landmark_flow::node_core::GoalUpdate| Vector2::new(g.msg.pose.position[0], g.msg.pose.position[1]).norm();
    assert_eq!(g.len(), 2, "the running plan (max_step_m = 1) and the next");
    assert!(step(&g[1]) <= 0.3 + 1e-9, "the next one has 0.3 m ({})", step(&g[1]));
}

/// A scripted run (odometry at 10 Hz on a line, a range to `a` every 0.2 s, re-plan on
/// every fused range of the target): the inline core's goals and heatmaps are those of
/// `planner::plan_next_goal_with_grid` called here with the same inputs (the belief
/// after the range, the robot position, σ² = default_noise_std_m², seed = estimator
/// seed + plan count); and the background core, given time to plan after each input,
/// emits the same goals.
#[test]
fn inline_goals_equal_the_planner_called_directly_and_background_goals_equal_inline() {
    use landmark_flow::planner::plan_next_goal_with_grid;
    let mut c = config(0.0);
    c.goal.replan_on_update = true;
    c.publish.heatmap = true;
    c.localizer.estimator.seed = 7;
    let mut inline = NodeCore::new(&c).unwrap();
    let mut background = NodeCore::new(&c).unwrap().with_background_planning();
    let script: Vec<(f64, Input, Vector2<f64>)> = (0..30)
        .flat_map(|k| {
            let t = 1.0 + 0.1 * k as f64;
            let x = Vector2::new(0.05 * k as f64, 0.0);
            let d = (Vector2::new(4.5, 2.5) - x).norm();
            let mut v = vec![(t, odom(t, x.x, x.y), x)];
            if k % 2 == 1 {
                v.push((t, range(t, "a", d, 0.09), x));
            }
            v
        })
        .collect();
    let (mut expected, mut got_inline, mut got_background, mut heatmaps) = (Vec::new(), Vec::new(), Vec::new(), 0);
    let mut plans = 0u64;
    for (t, input, x) in script {
        let out = inline.handle(t, input.clone());
        for o in &out {
            match o {
                Output::Goal(g) => {
                    got_inline.push(g.msg.clone());
                    let belief = inline.localizer().tracks()["a"].summary.belief;
                    let (goal, grid) = plan_next_goal_with_grid(&c.planner, x, &belief, 0.25, 7 + plans).unwrap();
                    plans += 1;
                    assert_eq!(g.from_m, x);
                    assert_eq!([g.msg.pose.position[0], g.msg.pose.position[1]], [goal.position_m.x, goal.position_m.y]);
                    expected.push(goal.position_m);
                    let Some(Output::Heatmap(h)) = out.iter().find(|o| matches!(o, Output::Heatmap(_))) else { panic!("no heatmap") };
                    let grid = grid.unwrap();
                    assert_eq!(h.grid.candidates, grid.candidates);
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&h.grid.values), bits(&grid.values), "the same criterion values (NaN off the candidates)");
                    heatmaps += 1;
                }
                Output::PlanFailed { error, .. } => panic!("plan failed: {error}"),
                _ => {}
            }
        }
        background.handle(t, input);
        assert!(background.wait_for_planner(WAIT));
        got_background.extend(goal_updates(&background.handle(t, Input::Tick)).into_iter().map(|g| g.msg));
    }
    assert!(expected.len() >= 15, "a goal per fused range and the first odometry: {}", expected.len());
    assert_eq!(heatmaps, expected.len());
    assert_eq!(got_background, got_inline);
}
