//! The `ros2msg` definitions of the messages the replayer reads and writes: what rosbag2
//! stores as the MCAP schema, so `rosbags` and Foxglove decode the output without our
//! package.

/// ROS 2 type names as rosbag2 stores them.
pub mod type_names {
    pub const ODOMETRY: &str = "nav_msgs/msg/Odometry";
    pub const RANGE: &str = "sensor_msgs/msg/Range";
    pub const RANGE_MEASUREMENT: &str = "landmark_flow/msg/RangeMeasurement";
    pub const LANDMARK_BELIEF_ARRAY: &str = "landmark_flow/msg/LandmarkBeliefArray";
    pub const POSE_WITH_COVARIANCE_STAMPED: &str = "geometry_msgs/msg/PoseWithCovarianceStamped";
    pub const POSE_STAMPED: &str = "geometry_msgs/msg/PoseStamped";
    pub const ODOMETRY_CORRECTION: &str = "landmark_flow/msg/OdometryCorrection";
    pub const TF_MESSAGE: &str = "tf2_msgs/msg/TFMessage";
}

const TIME: &str = "int32 sec\nuint32 nanosec\n";
const HEADER: &str = "builtin_interfaces/Time stamp\nstring frame_id\n";
const POINT: &str = "float64 x\nfloat64 y\nfloat64 z\n";
const VECTOR3: &str = "float64 x\nfloat64 y\nfloat64 z\n";
const QUATERNION: &str = "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n";
const POSE: &str = "Point position\nQuaternion orientation\n";
const POSE_WITH_COVARIANCE: &str = "Pose pose\nfloat64[36] covariance\n";
const TWIST: &str = "Vector3  linear\nVector3  angular\n";
const TWIST_WITH_COVARIANCE: &str = "Twist twist\nfloat64[36] covariance\n";
const TRANSFORM_STAMPED: &str = "std_msgs/Header header\nstring child_frame_id\nTransform transform\n";
const TRANSFORM: &str = "Vector3 translation\nQuaternion rotation\n";

/// The full `ros2msg` definition of a type (its text, then each dependency after a
/// line of 80 `=` and `MSG: pkg/Type`, as rosbag2 writes MCAP schemas), or `None`
/// for a type the replayer does not know.
pub fn message_definition(type_name: &str) -> Option<String> {
    let (main, deps): (&str, &[(&str, &str)]) = match type_name {
        type_names::ODOMETRY => (
            "std_msgs/Header header\nstring child_frame_id\ngeometry_msgs/PoseWithCovariance pose\ngeometry_msgs/TwistWithCovariance twist\n",
            &[
                ("std_msgs/Header", HEADER),
                ("builtin_interfaces/Time", TIME),
                ("geometry_msgs/PoseWithCovariance", POSE_WITH_COVARIANCE),
                ("geometry_msgs/Pose", POSE),
                ("geometry_msgs/Point", POINT),
                ("geometry_msgs/Quaternion", QUATERNION),
                ("geometry_msgs/TwistWithCovariance", TWIST_WITH_COVARIANCE),
                ("geometry_msgs/Twist", TWIST),
                ("geometry_msgs/Vector3", VECTOR3),
            ],
        ),
        type_names::RANGE => (
            "uint8 ULTRASOUND=0\nuint8 INFRARED=1\nstd_msgs/Header header\nuint8 radiation_type\nfloat32 field_of_view\nfloat32 min_range\nfloat32 max_range\nfloat32 range\nfloat32 variance\n",
            &[("std_msgs/Header", HEADER), ("builtin_interfaces/Time", TIME)],
        ),
        type_names::RANGE_MEASUREMENT => (
            include_str!("../../msg/RangeMeasurement.msg"),
            &[("std_msgs/Header", HEADER), ("builtin_interfaces/Time", TIME)],
        ),
        type_names::LANDMARK_BELIEF_ARRAY => (
            include_str!("../../msg/LandmarkBeliefArray.msg"),
            &[
                ("std_msgs/Header", HEADER),
                ("builtin_interfaces/Time", TIME),
                ("landmark_flow/LandmarkBelief", include_str!("../../msg/LandmarkBelief.msg")),
                ("geometry_msgs/Point", POINT),
                ("landmark_flow/GaussianComponent", include_str!("../../msg/GaussianComponent.msg")),
            ],
        ),
        type_names::POSE_WITH_COVARIANCE_STAMPED => (
            "std_msgs/Header header\nPoseWithCovariance pose\n",
            &[
                ("std_msgs/Header", HEADER),
                ("builtin_interfaces/Time", TIME),
                ("geometry_msgs/PoseWithCovariance", POSE_WITH_COVARIANCE),
                ("geometry_msgs/Pose", POSE),
                ("geometry_msgs/Point", POINT),
                ("geometry_msgs/Quaternion", QUATERNION),
            ],
        ),
        type_names::POSE_STAMPED => (
            "std_msgs/Header header\nPose pose\n",
            &[
                ("std_msgs/Header", HEADER),
                ("builtin_interfaces/Time", TIME),
                ("geometry_msgs/Pose", POSE),
                ("geometry_msgs/Point", POINT),
                ("geometry_msgs/Quaternion", QUATERNION),
            ],
        ),
        type_names::ODOMETRY_CORRECTION => (
            include_str!("../../msg/OdometryCorrection.msg"),
            &[("std_msgs/Header", HEADER), ("builtin_interfaces/Time", TIME)],
        ),
        type_names::TF_MESSAGE => (
            "geometry_msgs/TransformStamped[] transforms\n",
            &[
                ("geometry_msgs/TransformStamped", TRANSFORM_STAMPED),
                ("std_msgs/Header", HEADER),
                ("builtin_interfaces/Time", TIME),
                ("geometry_msgs/Transform", TRANSFORM),
                ("geometry_msgs/Vector3", VECTOR3),
                ("geometry_msgs/Quaternion", QUATERNION),
            ],
        ),
        _ => return None,
    };
    let mut text = main.trim_end().to_string();
    text.push('\n');
    for (name, body) in deps {
        text.push_str(&"=".repeat(80));
        text.push_str("\nMSG: ");
        text.push_str(name);
        text.push('\n');
        text.push_str(body.trim_end());
        text.push('\n');
    }
    Some(text)
}
