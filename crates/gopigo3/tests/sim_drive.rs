//! The driver against the simulated board: moves, speeds, battery, sensor.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use gopigo3::frames::MessageType;
use gopigo3::sim::{ClockMode, MotorMode, Pose, SimBoard, SimConfig, SimHandle};
use gopigo3::{
    DistanceSensor, EasyDistance, Geometry, GoPiGo3, Gopigo3Error, LedMask, MotorPort, ServoPort,
};

fn robot_with(config: SimConfig) -> (GoPiGo3<SimBoard>, SimHandle) {
    let geometry = config.geometry;
    let board = SimBoard::new(config);
    let handle = board.handle();
    let g = GoPiGo3::new(board, geometry).expect("simulated board passes the board check");
    (g, handle)
}

fn robot() -> (GoPiGo3<SimBoard>, SimHandle) {
    robot_with(SimConfig::default())
}

fn heading_change_deg(a: Pose, b: Pose) -> f64 {
    let d = (b.heading_rad - a.heading_rad).to_degrees();
    (d + 540.0).rem_euclid(360.0) - 180.0
}

#[test]
fn identity_reads_from_sim() {
    let (mut g, _h) = robot();
    assert_eq!(g.manufacturer().unwrap(), "Dexter Industries");
    assert_eq!(g.board_name().unwrap(), "GoPiGo3");
    assert_eq!(g.firmware_version().unwrap(), "1.0.0");
    assert_eq!(g.hardware_version().unwrap(), "3.0.0");
    assert_eq!(g.serial_id().unwrap().len(), 32);
}

#[test]
fn board_check_fails_on_sim_with_wrong_firmware_or_dead_board() {
    let board = SimBoard::new(SimConfig {
        firmware_version: 1_001_000,
        ..SimConfig::default()
    });
    let err = GoPiGo3::new(board, Geometry::default()).err().unwrap();
    assert_eq!(
        err,
        Gopigo3Error::WrongFirmware {
            found: "1.1.0".into()
        }
    );

    let board = SimBoard::default();
    board.handle().set_responding(false);
    let err = GoPiGo3::new(board, Geometry::default()).err().unwrap();
    assert!(err.to_string().contains("no valid reply"), "{err}");
}

#[test]
fn drive_cm_20_moves_encoders_and_pose() {
    let (mut g, h) = robot();
    let start = h.pose();
    let t0 = h.time_s();
    g.drive_cm(20.0, true).unwrap();
    let (l, r) = g.read_encoders().unwrap();
    let want = 200.0 / Geometry::default().wheel_circumference_mm() * 360.0; // 344.6°
    assert!(
        (l - want).abs() < 5.0 && (r - want).abs() < 5.0,
        "{l} {r} vs {want}"
    );
    assert!((g.read_encoders_average_cm().unwrap() - 20.0).abs() < 0.3);
    let p = h.pose();
    assert!(
        (p.x_mm - start.x_mm - 200.0).abs() < 5.0,
        "x moved {}",
        p.x_mm - start.x_mm
    );
    assert!((p.y_mm - start.y_mm).abs() < 1.0);
    assert!(heading_change_deg(start, p).abs() < 0.5);
    // at the default 300 dps limit this takes ~1.15 s of simulated time
    let took = h.time_s() - t0;
    assert!((1.1..1.4).contains(&took), "took {took} s");
}

#[test]
fn drive_cm_backward_and_non_blocking() {
    let (mut g, h) = robot();
    let start = h.pose();
    g.drive_cm(-10.0, false).unwrap();
    assert!(
        h.pose().x_mm == start.x_mm,
        "non-blocking returns before moving"
    );
    h.advance(Duration::from_secs(2));
    assert!((h.pose().x_mm - (start.x_mm - 100.0)).abs() < 3.0);
    let target = -100.0 / Geometry::default().wheel_circumference_mm() * 360.0;
    assert!(g.target_reached(target, target).unwrap());
    assert!(!g.target_reached(target + 20.0, target).unwrap());
}

#[test]
fn turn_degrees_90_turns_right_by_90() {
    let (mut g, h) = robot();
    let start = h.pose();
    g.turn_degrees(90.0, true).unwrap();
    let p = h.pose();
    let d = heading_change_deg(start, p);
    // the vendor's positive turn is to the right: clockwise, heading drops
    assert!((d + 90.0).abs() < 5.0, "heading changed {d}°");
    assert!((p.x_mm - start.x_mm).abs() < 2.0 && (p.y_mm - start.y_mm).abs() < 2.0);
    g.turn_degrees(-180.0, true).unwrap();
    let d = heading_change_deg(start, h.pose());
    assert!((d - 90.0).abs() < 5.0, "heading now {d}° from start");
}

#[test]
fn set_speed_limits_dps() {
    let (mut g, h) = robot();
    g.set_speed(150.0).unwrap();
    assert_eq!(g.get_speed(), 150.0);
    g.forward().unwrap();
    h.advance(Duration::from_secs(1));
    let s = g.get_motor_status(MotorPort::Left).unwrap();
    assert!((s.dps - 150.0).abs() < 1.0, "dps {}", s.dps);
    let (l, r) = g.read_encoders().unwrap();
    assert!(
        (l - 150.0).abs() < 2.0 && (r - 150.0).abs() < 2.0,
        "{l} {r}"
    );
    // 150 dps ≈ 87 mm/s
    assert!((h.pose().x_mm - 2000.0 - 87.0).abs() < 2.0);

    // steer at percentages of the speed
    g.steer(100.0, 50.0).unwrap();
    h.advance(Duration::from_millis(100));
    let l = g.get_motor_status(MotorPort::Left).unwrap().dps;
    let r = g.get_motor_status(MotorPort::Right).unwrap().dps;
    assert!((l - 150.0).abs() < 1.0 && (r - 75.0).abs() < 1.0, "{l} {r}");
}

#[test]
fn stop_floats_motors_and_robot_stays() {
    let (mut g, h) = robot();
    g.forward().unwrap();
    h.advance(Duration::from_millis(500));
    g.stop().unwrap();
    assert_eq!(h.motor(MotorPort::Left).mode, MotorMode::Float);
    assert_eq!(h.motor(MotorPort::Right).mode, MotorMode::Float);
    let p = h.pose();
    h.advance(Duration::from_secs(2));
    assert_eq!(h.pose(), p);
    assert_eq!(g.get_motor_status(MotorPort::Right).unwrap().dps, 0.0);
}

#[test]
fn spins_and_one_wheel_turns() {
    let (mut g, h) = robot();
    let start = h.pose();
    g.spin_left().unwrap();
    h.advance(Duration::from_millis(500));
    assert!(heading_change_deg(start, h.pose()) > 20.0);
    assert!((h.pose().x_mm - start.x_mm).abs() < 1.0);
    g.stop().unwrap();
    let mid = h.pose();
    g.right().unwrap(); // left wheel only: clockwise
    h.advance(Duration::from_millis(500));
    assert!(heading_change_deg(mid, h.pose()) < -20.0);
    assert_eq!(h.motor(MotorPort::Right).speed_dps, 0.0);
}

#[test]
fn battery_reads_pack_minus_diode_and_drains() {
    let (mut g, h) = robot();
    let pack = h.pack_voltage();
    assert!((g.battery_voltage().unwrap() - (pack - 0.7)).abs() < 0.0015);
    assert!((g.battery_pack_voltage().unwrap() - pack).abs() < 0.0015);
    assert!((g.voltage_5v().unwrap() - 5.0).abs() < 1e-9);
    g.forward().unwrap();
    h.advance(Duration::from_secs(600));
    g.stop().unwrap();
    assert!(
        h.pack_voltage() < pack - 0.05,
        "drained to {}",
        h.pack_voltage()
    );
}

#[test]
fn low_battery_floats_motors_with_flag() {
    let (mut g, h) = robot();
    h.set_pack_voltage(6.2); // VCC 5.5 V, under the 6 V cut-off
    g.forward().unwrap();
    let x = h.pose().x_mm;
    h.advance(Duration::from_secs(1));
    assert_eq!(h.pose().x_mm, x);
    assert!(g
        .get_motor_status(MotorPort::Left)
        .unwrap()
        .flags
        .low_voltage_float());
}

#[test]
fn sixteen_tick_robot_drives_20_cm() {
    let config = SimConfig {
        geometry: Geometry::sixteen_ticks(),
        ..SimConfig::default()
    };
    let (mut g, h) = robot_with(config);
    assert!((g.geometry().ticks_per_degree() - 5.3333).abs() < 1e-3);
    let x0 = h.pose().x_mm;
    g.drive_cm(20.0, true).unwrap();
    assert!((h.pose().x_mm - x0 - 200.0).abs() < 5.0);
    let (l, _) = g.read_encoders().unwrap();
    assert!((l - 344.6).abs() < 5.0, "{l}");
}

#[test]
fn reset_encoders_zeroes_and_offsets_hold() {
    let (mut g, h) = robot();
    g.forward().unwrap();
    h.advance(Duration::from_millis(400));
    g.stop().unwrap();
    assert!(g.get_motor_encoder(MotorPort::Left).unwrap() > 100.0);
    g.reset_encoders().unwrap();
    let (l, r) = g.read_encoders().unwrap();
    assert!(l.abs() < 1.0 && r.abs() < 1.0, "{l} {r}");
    // position targets are in encoder coordinates after the offset
    g.set_motor_position(MotorPort::Both, 90.0).unwrap();
    h.advance(Duration::from_secs(1));
    let (l, r) = g.read_encoders().unwrap();
    assert!((l - 90.0).abs() < 1.0 && (r - 90.0).abs() < 1.0, "{l} {r}");
}

#[test]
fn leds_and_servos_reach_the_sim() {
    let (mut g, h) = robot();
    g.set_led(LedMask::BLINKER_LEFT, 255, 0, 0).unwrap();
    g.set_eye_color((0, 0, 255));
    g.open_eyes().unwrap();
    g.set_servo_angle(ServoPort::Two, 90.0).unwrap();
    assert_eq!(h.led(LedMask::BLINKER_LEFT), (255, 0, 0));
    assert_eq!(h.led(LedMask::EYE_RIGHT), (0, 0, 255));
    assert_eq!(h.led(LedMask::BLINKER_RIGHT), (0, 0, 0));
    assert_eq!(h.servo_pulse_us(ServoPort::Two), 1500);
    g.reset_all().unwrap();
    assert_eq!(h.led(LedMask::EYE_RIGHT), (0, 0, 0));
    assert_eq!(h.servo_pulse_us(ServoPort::Two), 0);
    assert_eq!(h.motor(MotorPort::Left).limit_dps, 0.0);
}

#[test]
fn distance_sensor_reads_wall_and_added_box() {
    let (_g, h) = robot();
    let mut sensor = gopigo3::sim::SimDistanceSensor::new(h.clone());
    // centre of a 4 m room facing +x, sensor 60 mm ahead of the centre
    assert_eq!(sensor.read_mm().unwrap(), 1940);
    // a box 15 cm ahead of the sensor
    let p = h.pose().ahead(60.0);
    h.add_box(
        (p.x_mm + 150.0, p.y_mm - 100.0),
        (p.x_mm + 250.0, p.y_mm + 100.0),
    );
    assert_eq!(sensor.read_mm().unwrap(), 150);
    let mut easy = EasyDistance::new(sensor.clone());
    assert_eq!(easy.read_mm().unwrap(), 150);
    h.clear_obstacles();
    assert_eq!(easy.read_mm().unwrap(), (150 + 1940) / 2, "moving average");
    // facing a far wall beyond range: 8190 raw, 3000 filtered
    h.set_pose(Pose {
        x_mm: 150.0,
        y_mm: 1500.0,
        heading_rad: 0.0,
    });
    assert_eq!(sensor.read_mm().unwrap(), gopigo3::sim::OUT_OF_RANGE_MM);
    assert_eq!(easy.read_mm().unwrap(), 3000);
}

#[test]
fn robot_stops_at_the_wall() {
    let (mut g, h) = robot();
    let mut sensor = SimBoard::default().distance_sensor(); // another world: unaffected
    assert_eq!(sensor.read_mm().unwrap(), 1940);
    let mut sensor = gopigo3::sim::SimDistanceSensor::new(h.clone());
    g.forward().unwrap();
    h.advance(Duration::from_secs(20)); // 20 s at 174 mm/s would be 3.5 m
    let r = h.robot();
    assert!(r.bumped);
    assert!(r.pose.x_mm <= 4000.0 - 90.0 + 1e-6, "x {}", r.pose.x_mm);
    assert!(r.pose.x_mm > 4000.0 - 90.0 - 3.0, "x {}", r.pose.x_mm);
    let d = sensor.read_mm().unwrap();
    assert!((28..=33).contains(&d), "sensor at the wall reads {d}");
    assert!(g
        .get_motor_status(MotorPort::Left)
        .unwrap()
        .flags
        .overloaded());
    // backing off is allowed
    g.backward().unwrap();
    h.advance(Duration::from_millis(500));
    assert!(!h.robot().bumped);
    assert!(h.pose().x_mm < r.pose.x_mm - 50.0);
}

#[test]
fn robot_stops_at_an_obstacle_and_blocking_move_still_ends() {
    let (mut g, h) = robot();
    h.add_box((2150.0, 1400.0), (2250.0, 1600.0));
    // drive_cm(50) would end inside the box; the robot halts at it and the
    // wheels slip to their target, so the blocking call returns.
    g.drive_cm(50.0, true).unwrap();
    let r = h.robot();
    assert!(r.bumped);
    assert!(
        (r.pose.x_mm - (2150.0 - 90.0)).abs() < 3.0,
        "x {}",
        r.pose.x_mm
    );
}

#[test]
fn frame_log_times_the_first_motor_frame() {
    let (mut g, h) = robot();
    let (tx, rx) = std::sync::mpsc::channel();
    h.set_frame_log(Some(tx));
    g.battery_voltage().unwrap();
    g.forward().unwrap();
    let frames: Vec<_> = rx.try_iter().collect();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].message(), Some(MessageType::GetVoltageVcc));
    assert_eq!(frames[0].rx[3], 0xA5);
    let first_motor = frames
        .iter()
        .find(|f| f.message().is_some_and(|m| m.is_motor_command()))
        .unwrap();
    assert_eq!(first_motor.tx, vec![0x08, 0x0E, 0x03, 0x07, 0xD0]);
    assert!(first_motor.at >= frames[0].at);
    assert!(first_motor.sim_time_s.is_some());
}

#[test]
fn real_time_clock_moves_with_the_wall_clock() {
    let config = SimConfig {
        clock: ClockMode::RealTime,
        ..SimConfig::default()
    };
    let (mut g, h) = robot_with(config);
    let x0 = h.pose().x_mm;
    let t0 = std::time::Instant::now();
    g.forward().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let moved = h.pose().x_mm - x0;
    let elapsed = t0.elapsed().as_secs_f64();
    let mm_per_s = 300.0 / 360.0 * Geometry::default().wheel_circumference_mm();
    // moved for at least the 300 ms slept, at most the time measured
    assert!(moved >= 0.3 * mm_per_s - 1.0, "moved {moved}");
    assert!(
        moved <= elapsed * mm_per_s + 1.0,
        "moved {moved} in {elapsed}"
    );
    g.stop().unwrap(); // real 100 ms sleep inside
}

#[test]
fn blocking_move_times_out_when_wheels_cannot_turn() {
    let (mut g, h) = robot();
    h.set_pack_voltage(6.0); // motors float below the cut-off
    let err = g.drive_cm(10.0, true).unwrap_err();
    assert!(
        matches!(
            err,
            Gopigo3Error::MoveTimeout {
                what: "drive_cm",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(h.motor(MotorPort::Left).mode, MotorMode::Float);
}

#[test]
fn sim_kit_gives_driver_sensor_and_handle_on_one_world() {
    let mut kit = gopigo3::sim::new_robot(SimConfig::default()).unwrap();
    assert_eq!(kit.distance.read_mm().unwrap(), 1940);
    kit.gopigo.drive_cm(10.0, true).unwrap();
    assert!((kit.handle.pose().x_mm - 2100.0).abs() < 3.0);
    let d = kit.distance.read_mm().unwrap();
    assert!((1838..=1842).contains(&d), "{d}");
}
