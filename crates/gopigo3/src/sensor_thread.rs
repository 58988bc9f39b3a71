//! A distance sensor read on its own thread, so that a caller with a
//! deadline (the agent's 50 Hz executor, which also applies stops) never
//! waits on the I2C bus.
//!
//! A VL53L0X single-shot reading takes tens of milliseconds, and a sensor
//! that answers but never finishes a measurement keeps the `vl53l0x`
//! crate's polling loop busy for seconds. [`SensorThread`] reads the wrapped
//! sensor back to back on a thread and [`DistanceSensor::read_mm`] returns
//! the latest result at once; a result older than `max_age` is an error
//! (the sensor is stuck), which the obstacle stop treats as a failed read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{BusError, DistanceSensor};

type Latest = Arc<Mutex<Option<(Instant, Result<u16, BusError>)>>>;

/// The latest reading of a sensor read continuously on a thread.
pub struct SensorThread {
    latest: Latest,
    max_age: Duration,
    started: Instant,
    stop: Arc<AtomicBool>,
    name: String,
}

impl SensorThread {
    /// Read `sensor` back to back (pausing `pause` between readings) on a
    /// thread named `name`; readings older than `max_age` are errors.
    pub fn spawn<S: DistanceSensor + Send + 'static>(
        mut sensor: S,
        name: &str,
        pause: Duration,
        max_age: Duration,
    ) -> std::io::Result<Self> {
        let latest: Latest = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (latest.clone(), stop.clone());
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    let r = sensor.read_mm();
                    *l.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), r));
                    std::thread::sleep(pause);
                }
            })?;
        Ok(Self {
            latest,
            max_age,
            started: Instant::now(),
            stop,
            name: name.to_string(),
        })
    }
}

impl DistanceSensor for SensorThread {
    fn read_mm(&mut self) -> Result<u16, BusError> {
        let latest = self
            .latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (at, age) = match &latest {
            Some((at, _)) => (*at, at.elapsed()),
            None => (self.started, self.started.elapsed()),
        };
        if age > self.max_age {
            return Err(BusError::Sensor {
                device: self.name.clone(),
                reason: format!(
                    "no reading for {} ms (stuck on the bus?)",
                    at.elapsed().as_millis()
                ),
            });
        }
        match latest {
            Some((_, r)) => r,
            // Just started: no reading yet, but not stale either.
            None => Err(BusError::Sensor {
                device: self.name.clone(),
                reason: "no reading yet".into(),
            }),
        }
    }
}

impl Drop for SensorThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A sensor whose reads each wait for a value from the test.
    struct Gated(mpsc::Receiver<Result<u16, BusError>>);
    impl DistanceSensor for Gated {
        fn read_mm(&mut self) -> Result<u16, BusError> {
            self.0.recv().unwrap_or(Ok(0))
        }
    }

    fn wait_until(mut f: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < end, "timed out");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn returns_the_latest_reading_without_waiting_for_the_bus() {
        let (tx, rx) = mpsc::channel();
        let mut s = SensorThread::spawn(
            Gated(rx),
            "test sensor",
            Duration::ZERO,
            Duration::from_secs(5),
        )
        .unwrap();
        // nothing read yet: an error, at once
        let e = s.read_mm().unwrap_err().to_string();
        assert!(e.contains("no reading yet"), "{e}");
        tx.send(Ok(420)).unwrap();
        wait_until(|| s.read_mm() == Ok(420));
        // the next read hangs on the bus; the caller still gets an answer at once
        let t = Instant::now();
        assert_eq!(s.read_mm(), Ok(420));
        assert!(t.elapsed() < Duration::from_secs(1));
        let err = BusError::Transfer {
            device: "/dev/i2c-1".into(),
            reason: "nack".into(),
        };
        tx.send(Err(err.clone())).unwrap();
        wait_until(|| s.read_mm() == Err(err.clone()));
    }

    #[test]
    fn a_stuck_sensor_becomes_an_error_after_max_age() {
        let (tx, rx) = mpsc::channel();
        let mut s = SensorThread::spawn(
            Gated(rx),
            "test sensor",
            Duration::ZERO,
            Duration::from_millis(50),
        )
        .unwrap();
        tx.send(Ok(300)).unwrap();
        wait_until(|| s.read_mm() == Ok(300));
        // the thread now waits forever on the next read: the reading ages out
        wait_until(|| s.read_mm().is_err());
        let e = s.read_mm().unwrap_err().to_string();
        assert!(
            e.contains("test sensor") && e.contains("no reading for"),
            "{e}"
        );
        drop(tx);
    }
}
