# landmark_flow: every target sets itself up (scripts/with_ros creates the embedded
# ROS 2 Jazzy venv on first use, or uses a sourced ROS 2 install).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

WITH_ROS := scripts/with_ros
WS := $(CURDIR)/_ws
# Plain cargo builds with the `ros` feature get their own target directory: r2r
# regenerates its bindings whenever AMENT_PREFIX_PATH/CMAKE_PREFIX_PATH differ, and
# colcon's environment differs from ours, so sharing colcon's would rebuild each time.
ROS_TARGET_DIR := $(CURDIR)/target/ros
export LANDMARK_FLOW_WS := $(WS)

.PHONY: demo demo-drift demo-3d test build test-core test-ros-unit test-ros eval planner-study bench bench-latency replay eval-plaza1 bench-replay clean

## make demo: build, then run the closed loop robot -> sensor -> filter -> goal -> robot
## headless for 40 s (launch/demo.launch.py's DEMO_NODES with config/demo.yaml; README
## "The demo"); prints error and tr(Sigma), writes out/demo/, fails if the final error is
## above 0.5 m (scripts/demo.py).
demo: build
	$(WITH_ROS) python3 scripts/demo.py

## make demo-drift: `make demo` with drifting odometry (launch/demo.launch.py drift:=true,
## config/demo_drift.yaml: sim_robot's odometry has a 0.01 rad/s gyro bias and a 2 % wheel
## scale error, landmark_flow_node runs `localizer.odometry: drifting`); writes
## out/demo_drift/, also prints the odometry's own error, same 0.5 m bar.
demo-drift: build
	$(WITH_ROS) python3 scripts/demo.py --drift

## make demo-3d: `make demo` with a ceiling anchor (config/demo_3d.yaml: the beacon 2.5 m up,
## the sensor 0.3 m above the base, localizer.dimension: 3 with a height prior); writes
## out/demo_3d/, prints the height, same 0.5 m bar on the horizontal error.
demo-3d: build
	$(WITH_ROS) python3 scripts/demo.py --config demo_3d.yaml

## make test: ROS-free core tests, the colcon build, the ROS layer's unit tests, and
## end-to-end tests against an rclpy peer.
test: test-core build test-ros-unit test-ros

## Colcon build of this package into _ws/ (the way ROS users build it).
build:
	$(WITH_ROS) scripts/colcon_build

## Estimator, planner, models, config, the bag replayer: no ROS anywhere (cargo
## feature `ros` off; `bag` on for tests/replay_*.rs and tests/plaza1.rs).
test-core:
	cargo test --release --no-default-features --features bag

## Unit tests of the ROS layer (needs the interfaces installed by `build`), with the
## features the colcon build gives the nodes (`ros` only).
test-ros-unit: build
	$(WITH_ROS) cargo test --release --lib --no-default-features --features ros --target-dir $(ROS_TARGET_DIR)

## End-to-end tests over real ROS 2 transport with rclpy (tests/ros/).
test-ros: build
	cd tests/ros && ../../$(WITH_ROS) python3 -m pytest -v -rA

## Estimator accuracy report on the slides' problem (README table, docs/estimator/).
eval:
	scripts/apt_ensure fonts-dejavu-core
	cargo run --release --no-default-features --features plots --example estimator_eval -- --seeds 200 --out docs/estimator

## Planner study: the slides' heatmaps, far-field agreement, closed-loop policy comparison
## (README "The slides' four heatmaps" and "Closed-loop study"; writes docs/planner/).
planner-study:
	scripts/apt_ensure fonts-dejavu-core
	cargo run --release --no-default-features --features plots --example planner_study -- --out docs/planner

## Criterion benchmarks of the core and the replayer (README numbers).
bench:
	cargo bench --no-default-features --features bag

## End-to-end latency (rclpy -> node -> rclpy, 50 Hz) and the node's memory (README numbers).
bench-latency: build
	$(WITH_ROS) python3 scripts/bench_latency.py

## make replay BAG=path [OUT=out/replay] [PARAMS=config/landmark_flow_node.yaml] [GT=truth.yaml]
## Offline replay of a rosbag2 (MCAP or sqlite3) through the node's code path.
replay:
	scripts/apt_ensure fonts-dejavu-core
	cargo run --release --no-default-features --features bag --bin landmark_flow_replay -- "$(BAG)" --out "$(or $(OUT),out/replay)" \
	    --params "$(or $(PARAMS),config/landmark_flow_node.yaml)" $(if $(GT),--ground-truth "$(GT)")

## Plaza1 evaluation (issue 7): both bags with config/plaza.yaml (no beacon positions),
## scored against ground_truth.yaml; calibration on, and off for the GT bag. Reports in
## docs/replay/plaza1_{gt,dr,gt_uncalibrated}/report.md (the README quotes them).
PLAZA1 := ../shared/data/plaza1
eval-plaza1:
	cargo build --release --no-default-features --features bag --bin landmark_flow_replay
	sed 's/enabled: true$$/enabled: false/' config/plaza.yaml > target/plaza_uncalibrated.yaml
	for run in gt:plaza1_gt_mcap:config/plaza.yaml dr:plaza1_dr_mcap:config/plaza.yaml \
	           gt_uncalibrated:plaza1_gt_mcap:target/plaza_uncalibrated.yaml \
	           dr_drifting:plaza1_dr_mcap:config/plaza_drifting.yaml \
	           gt_drifting:plaza1_gt_mcap:config/plaza_drifting.yaml; do \
	  IFS=: read -r name bag params <<< "$$run"; \
	  target/release/landmark_flow_replay $(PLAZA1)/$$bag --params $$params \
	    --ground-truth $(PLAZA1)/$$bag/ground_truth.yaml --out docs/replay/plaza1_$$name \
	    --true-path $(PLAZA1)/plaza1_gt_mcap --true-path-topic /odom; \
	  rm -rf docs/replay/plaza1_$$name/replay_bag docs/replay/plaza1_$$name/*.csv; \
	done

## Replay throughput on a synthetic hour of 10 Hz ranges (README number).
bench-replay:
	cargo bench --no-default-features --features bag --bench replay

clean:
	rm -rf $(WS) target
