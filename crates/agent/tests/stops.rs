//! Stops that cannot be refused: each test performs an attack from issue 10
//! on the executor over the simulated board and watches the wheels (the
//! board's motor state and its SPI frame log), not the executor's word.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gopigo3::sim::{self, ClockMode, MotorMode, SimBoard, SimConfig, SimHandle};
use gopigo3::{BusError, FrameRecord, Geometry, GoPiGo3, MotorPort, SpiBus};
use gopigo_agent::executor::{self, Executor, Input, Limits, Output, TICK};
use gopigo_agent::inbox::{Inbox, Refused, StopCause, QUEUE_CAPACITY};
use gopigo_protocol::{parse_command, CommandResult, CommandStatus, Telemetry};

/// The frame "both motors, 0 dps" (`08 0e 03 0000`).
const STOP_FRAME: [u8; 5] = [0x08, 0x0e, 0x03, 0x00, 0x00];

/// A bus over the simulated board that panics on an LED frame once armed:
/// a stand-in for a bug inside the executor.
struct Trap {
    board: SimBoard,
    armed: Arc<AtomicBool>,
}

impl SpiBus for Trap {
    fn transfer(&mut self, tx: &[u8], rx: &mut [u8]) -> Result<(), BusError> {
        if self.armed.load(Ordering::SeqCst) && tx.get(1) == Some(&0x06) {
            panic!("trap: a bug in the executor");
        }
        self.board.transfer(tx, rx)
    }
    fn sleep(&mut self, d: Duration) {
        self.board.sleep(d)
    }
}

/// An executor on a manual-clock simulated board, stepped tick by tick.
struct Stepped {
    exec: Executor<Trap>,
    inbox: Inbox,
    sim: SimHandle,
    frames: Receiver<FrameRecord>,
    now: Instant,
    out: Vec<Output>,
}

fn board(clock: ClockMode) -> (GoPiGo3<Trap>, SimHandle, Arc<AtomicBool>) {
    let board = SimBoard::new(SimConfig {
        clock,
        ..SimConfig::default()
    });
    let sim = board.handle();
    let armed = Arc::new(AtomicBool::new(false));
    let bus = Trap {
        board,
        armed: armed.clone(),
    };
    (GoPiGo3::new(bus, Geometry::default()).unwrap(), sim, armed)
}

fn stepped(limits: Limits) -> Stepped {
    let (gopigo, sim, _) = board(ClockMode::Manual);
    let distance = sim::SimDistanceSensor::new(sim.clone());
    let exec = Executor::new(
        Arc::new(Mutex::new(gopigo)),
        Some(Box::new(distance)),
        None,
        limits,
    )
    .unwrap();
    let (tx, frames) = std::sync::mpsc::channel();
    sim.set_frame_log(Some(tx));
    Stepped {
        exec,
        inbox: Inbox::new(),
        sim,
        frames,
        now: Instant::now(),
        out: Vec::new(),
    }
}

fn cmd(json: &str) -> Input {
    Input::Command(parse_command(json.as_bytes()).unwrap())
}

fn long_drive(id: &str) -> Input {
    cmd(&format!(
        r#"{{"id":"{id}","action":"drive","direction":"forward","duration_ms":60000}}"#
    ))
}

impl Stepped {
    /// One executor tick: the board's time moves one tick, then the
    /// executor services its inbox and ticks. Returns the frames sent.
    fn tick(&mut self) -> Vec<FrameRecord> {
        self.sim.advance(TICK);
        self.now += TICK;
        let (o, open) = self.exec.step(&self.inbox, self.now);
        assert!(open);
        self.out.extend(o);
        self.frames.try_iter().collect()
    }
    fn ticks(&mut self, n: usize) -> Vec<FrameRecord> {
        (0..n).flat_map(|_| self.tick()).collect()
    }
    fn wheels(&self) -> [f64; 2] {
        [MotorPort::Left, MotorPort::Right].map(|p| self.sim.motor(p).speed_dps)
    }
    fn modes(&self) -> [MotorMode; 2] {
        [MotorPort::Left, MotorPort::Right].map(|p| self.sim.motor(p).mode)
    }
    fn results(&self) -> Vec<CommandResult> {
        results(&self.out)
    }
    fn result(&self, id: &str, status: CommandStatus) -> Option<CommandResult> {
        self.results()
            .into_iter()
            .find(|r| r.id == id && r.status == status)
    }
    /// Starts a long drive and lets it run a few ticks.
    fn driving(&mut self) {
        self.inbox.push(long_drive("running")).unwrap();
        self.ticks(5);
        assert_eq!(self.wheels(), [300.0, 300.0]);
    }
}

fn results(out: &[Output]) -> Vec<CommandResult> {
    out.iter()
        .filter_map(|o| match o {
            Output::Result(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

fn has_stop_frame(frames: &[FrameRecord]) -> bool {
    frames.iter().any(|f| f.tx == STOP_FRAME)
}

#[test]
fn stop_after_500_queued_long_drives_stops_the_wheels_within_one_tick() {
    let mut r = stepped(Limits::default());
    r.driving();
    // The attack: a burst of 500 one-minute drives, then `stop`.
    let refused = (0..500)
        .filter(|i| r.inbox.push(long_drive(&format!("d{i}"))).is_err())
        .count();
    assert_eq!(refused, 500 - QUEUE_CAPACITY, "the queue stays bounded");
    r.inbox.stop(StopCause::Command(Some("s".into())));
    // One executor tick later the board has the 0 dps frame...
    let frames = r.tick();
    assert!(has_stop_frame(&frames), "no stop frame in the first tick");
    assert_eq!(r.modes(), [MotorMode::Dps(0.0), MotorMode::Dps(0.0)]);
    // ...and the wheels are at rest once the board integrates that tick.
    r.ticks(1);
    assert_eq!(r.wheels(), [0.0, 0.0]);
    // The stop is reported done, never refused; the running drive ends with
    // the stop as its reason; every queued drive is reported, none runs.
    assert!(r.result("s", CommandStatus::Done).is_some());
    assert!(r.result("s", CommandStatus::Rejected).is_none());
    let ended = r.result("running", CommandStatus::Done).unwrap();
    assert_eq!(ended.reason.as_deref(), Some("stopped by command s"));
    let cancelled: Vec<_> = r
        .results()
        .into_iter()
        .filter(|x| x.status == CommandStatus::Rejected)
        .collect();
    assert_eq!(cancelled.len(), QUEUE_CAPACITY);
    assert!(cancelled[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("cancelled"));
    let later = r.ticks(100);
    assert_eq!(r.wheels(), [0.0, 0.0]);
    assert!(later
        .iter()
        .all(|f| f.tx.get(1) != Some(&0x0e) || f.tx == STOP_FRAME));
    assert_eq!(r.modes(), [MotorMode::Float, MotorMode::Float]);
}

#[test]
fn the_link_loss_stop_happens_while_the_queue_is_full() {
    let mut r = stepped(Limits::default());
    r.driving();
    // Fill the queue with drives sent after the running one; the executor
    // has not yet taken them.
    for i in 0..QUEUE_CAPACITY {
        r.inbox.push(long_drive(&format!("q{i}"))).unwrap();
    }
    assert_eq!(r.inbox.push(long_drive("x")), Err(Refused::Full));
    r.inbox
        .stop(StopCause::LinkLost("connection closed".into()));
    let frames = r.tick();
    assert!(has_stop_frame(&frames), "no stop frame in the first tick");
    r.ticks(1);
    assert_eq!(r.wheels(), [0.0, 0.0]);
    let ended = r.result("running", CommandStatus::Done).unwrap();
    assert!(ended.reason.unwrap().contains("link to the broker lost"));
    // The queued drives do not start on a dead link.
    r.ticks(50);
    assert_eq!(r.wheels(), [0.0, 0.0]);
    assert_eq!(r.inbox.queued(), 0);
    let rejected = r
        .results()
        .iter()
        .filter(|x| x.status == CommandStatus::Rejected)
        .count();
    assert_eq!(rejected, QUEUE_CAPACITY);
}

#[test]
fn led_and_servo_spam_does_not_keep_a_drive_alive() {
    let deadman = Duration::from_millis(600);
    let mut r = stepped(Limits {
        deadman,
        ..Limits::default()
    });
    r.driving();
    let mut ticks = 0;
    // An LED or servo change every tick: none of it says a driver watches.
    while r.exec.is_moving() && ticks < 200 {
        let c = if ticks % 2 == 0 {
            r#"{"action":"led","color":[255,0,0]}"#
        } else {
            r#"{"action":"servo","angle":45}"#
        };
        r.inbox.push(cmd(c)).unwrap();
        r.tick();
        ticks += 1;
    }
    let ended = r.result("running", CommandStatus::Done).unwrap();
    assert!(ended.reason.unwrap().starts_with("dead-man"));
    // 5 ticks ran before the spam; the dead-man fires on the first tick past 600 ms
    let ms = (ticks + 5) * TICK.as_millis() as usize;
    assert!((600..=640).contains(&ms), "stopped after {ms} ms");
    r.ticks(1);
    assert_eq!(r.wheels(), [0.0, 0.0]);
}

#[test]
fn heartbeats_keep_a_drive_alive_and_their_absence_stops_it() {
    let mut r = stepped(Limits {
        deadman: Duration::from_millis(600),
        ..Limits::default()
    });
    r.driving();
    for i in 0..10 {
        r.inbox
            .push(cmd(&format!(r#"{{"id":"h{i}","action":"heartbeat"}}"#)))
            .unwrap();
        r.ticks(20); // 400 ms
        assert!(r.exec.is_moving(), "stopped despite heartbeat {i}");
    }
    assert!(r.result("h9", CommandStatus::Done).is_some());
    r.ticks(15);
    assert!(!r.exec.is_moving());
    let ended = r.result("running", CommandStatus::Done).unwrap();
    assert!(ended.reason.unwrap().starts_with("dead-man"));
}

#[test]
fn the_stop_is_retried_until_the_wheels_read_back_at_rest() {
    let mut r = stepped(Limits::default());
    r.driving();
    // The board stops answering (a loose cable, a brown-out): the stop's
    // SPI write is lost and the wheels keep turning.
    r.sim.set_responding(false);
    r.inbox.stop(StopCause::Command(Some("s".into())));
    let deaf = r.ticks(25);
    assert_eq!(r.wheels(), [300.0, 300.0]);
    let retries = deaf.iter().filter(|f| f.tx == STOP_FRAME).count();
    assert!(retries >= 20, "only {retries} stop writes in 25 ticks");
    // The board answers again: the next retry lands without any new command.
    r.sim.set_responding(true);
    let frames = r.tick();
    assert!(has_stop_frame(&frames));
    r.ticks(1);
    assert_eq!(r.wheels(), [0.0, 0.0]);
    r.ticks(10);
    assert_eq!(r.modes(), [MotorMode::Float, MotorMode::Float]);
    let t = r.exec.telemetry(false).unwrap();
    assert_eq!(t.motion, "stopped");
}

/// A spawned executor on a real-time simulated board, as the agent runs it.
struct Running {
    inbox: Arc<Inbox>,
    sim: SimHandle,
    frames: Receiver<FrameRecord>,
    out: tokio::sync::mpsc::UnboundedReceiver<Output>,
    seen: Vec<Output>,
    robot: executor::SharedRobot<Trap>,
    armed: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn running() -> Running {
    let (gopigo, sim, armed) = board(ClockMode::RealTime);
    let robot = Arc::new(Mutex::new(gopigo));
    let exec = Executor::new(robot.clone(), None, None, Limits::default()).unwrap();
    let (tx, frames) = std::sync::mpsc::channel();
    sim.set_frame_log(Some(tx));
    let inbox = Arc::new(Inbox::new());
    let (out_tx, out) = tokio::sync::mpsc::unbounded_channel();
    let moving = Arc::new(AtomicBool::new(false));
    let thread = executor::spawn(exec, inbox.clone(), out_tx, moving).unwrap();
    Running {
        inbox,
        sim,
        frames,
        out,
        seen: Vec::new(),
        robot,
        armed,
        thread: Some(thread),
    }
}

impl Running {
    /// Waits (up to 10 s) for an output matching `pred`.
    fn wait_for(&mut self, what: &str, pred: impl Fn(&Output) -> bool) -> Output {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            while let Ok(o) = self.out.try_recv() {
                self.seen.push(o.clone());
                if pred(&o) {
                    return o;
                }
            }
            assert!(Instant::now() < deadline, "no {what}; saw {:?}", self.seen);
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    fn result(&mut self, id: &str, status: CommandStatus) -> CommandResult {
        let what = format!("{status:?} result of {id}");
        match self.wait_for(
            &what,
            |o| matches!(o, Output::Result(r) if r.id == id && r.status == status),
        ) {
            Output::Result(r) => r,
            _ => unreachable!(),
        }
    }
    fn telemetry(&mut self, motion: &str) -> Telemetry {
        match self.wait_for(
            &format!("telemetry {motion}"),
            |o| matches!(o, Output::Telemetry(t) if t.motion == motion),
        ) {
            Output::Telemetry(t) => t,
            _ => unreachable!(),
        }
    }
    fn motor_speeds(&self) -> [f64; 2] {
        [MotorPort::Left, MotorPort::Right].map(|p| self.sim.motor(p).speed_dps)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.inbox.close("test over");
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_running_executor_takes_a_stop_behind_a_full_queue_at_once() {
    let mut r = running();
    r.inbox.push(long_drive("running")).unwrap();
    r.result("running", CommandStatus::Accepted);
    for i in 0..500 {
        let _ = r.inbox.push(long_drive(&format!("d{i}")));
    }
    let _ = r.frames.try_iter().count();
    let pushed = Instant::now();
    r.inbox.stop(StopCause::Command(Some("s".into())));
    let stop_frame = loop {
        let f = r.frames.recv_timeout(Duration::from_secs(10)).unwrap();
        if f.tx == STOP_FRAME {
            break f;
        }
    };
    let latency = stop_frame.at.saturating_duration_since(pushed);
    println!(
        "stop -> 0 dps frame: {:.3} ms = {:.3} ticks of {} ms",
        latency.as_secs_f64() * 1e3,
        latency.as_secs_f64() / TICK.as_secs_f64(),
        TICK.as_millis()
    );
    r.result("s", CommandStatus::Done);
    r.telemetry("stopped");
    assert_eq!(r.motor_speeds(), [0.0, 0.0]);
    // A generous bound (the dead-man would have taken 3 s); the figure is printed.
    assert!(latency < Duration::from_secs(1), "{latency:?}");
}

#[test]
fn a_panic_in_another_thread_stops_the_drive_with_its_reason() {
    let mut r = running();
    let (inbox, robot) = (r.inbox.clone(), r.robot.clone());
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        executor::stop_on_panic(&inbox, &robot, info);
    }));
    r.inbox.push(long_drive("running")).unwrap();
    r.result("running", CommandStatus::Accepted);
    r.telemetry("driving");
    // The attack: a request handler panics (issue 10 finding 2).
    let _ = std::thread::Builder::new()
        .name("camera-handler".into())
        .spawn(|| panic!("Duration::from_secs_f64 overflow"))
        .unwrap()
        .join();
    let ended = r.result("running", CommandStatus::Done);
    let reason = ended.reason.unwrap();
    assert!(
        reason.contains("panic in thread 'camera-handler'")
            && reason.contains("from_secs_f64 overflow"),
        "{reason}"
    );
    let t = r.telemetry("stopped");
    assert_eq!(t.command_id, None);
    assert_eq!(r.motor_speeds(), [0.0, 0.0]);
    // The executor lives on and takes commands again.
    r.inbox.push(long_drive("again")).unwrap();
    r.result("again", CommandStatus::Accepted);
    std::panic::set_hook(previous);
}

#[test]
fn a_panic_in_the_executor_stops_reports_and_refuses_later_commands() {
    let mut r = running();
    r.inbox.push(long_drive("running")).unwrap();
    r.result("running", CommandStatus::Accepted);
    r.telemetry("driving");
    r.armed.store(true, Ordering::SeqCst);
    r.inbox
        .push(cmd(r#"{"id":"l","action":"led","color":[1,2,3]}"#))
        .unwrap();
    let ended = r.result("running", CommandStatus::Done);
    let reason = ended.reason.unwrap();
    assert!(
        reason.contains("executor panicked") && reason.contains("trap"),
        "{reason}"
    );
    r.telemetry("stopped");
    assert_eq!(r.motor_speeds(), [0.0, 0.0]);
    assert_eq!(
        r.sim.motor(MotorPort::Left).mode,
        MotorMode::Float,
        "floated after the stop"
    );
    // The thread has ended: the output channel closes and commands are refused.
    r.thread.take().unwrap().join().unwrap();
    match r.inbox.push(long_drive("late")) {
        Err(Refused::Closed(why)) => assert!(why.contains("panicked"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_forward_drive_refused_for_an_obstacle_stops_the_running_one_too() {
    let mut r = stepped(Limits::default());
    r.inbox
        .push(cmd(
            r#"{"id":"back","action":"drive","direction":"backward","duration_ms":60000}"#,
        ))
        .unwrap();
    r.ticks(5);
    assert_eq!(r.wheels(), [-300.0, -300.0]);
    // a box 100 mm ahead of the sensor
    let p = r.sim.pose();
    r.sim.add_box(
        (p.x_mm + 160.0, p.y_mm - 200.0),
        (p.x_mm + 260.0, p.y_mm + 200.0),
    );
    r.inbox.push(long_drive("fwd")).unwrap();
    r.ticks(2);
    let refused = r.result("fwd", CommandStatus::Rejected).unwrap();
    assert!(refused.reason.unwrap().starts_with("obstacle at"));
    let ended = r.result("back", CommandStatus::Done).unwrap();
    assert_eq!(ended.reason.as_deref(), Some("preempted by fwd"));
    // the backward drive is over, so its wheels must not turn on untracked
    assert_eq!(r.wheels(), [0.0, 0.0]);
    r.ticks(10);
    assert_eq!(r.modes(), [MotorMode::Float, MotorMode::Float]);
}
