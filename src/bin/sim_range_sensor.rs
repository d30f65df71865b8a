fn main() {
    let m = r2r::landmark_flow::msg::RangeMeasurement::default();
    println!("{m:?}");
}
