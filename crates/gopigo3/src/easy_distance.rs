//! The vendor's "easy" distance reading as a pure wrapper over any [`DistanceSensor`].

use std::collections::VecDeque;

use crate::{BusError, DistanceSensor};

/// Reading reported when nothing is in range.
pub const NOTHING_IN_RANGE_MM: u16 = 3000;
/// Readings above this are the sensor's out-of-range codes (8190/8191).
pub const OUT_OF_RANGE_ABOVE_MM: u16 = 8000;
/// Readings below this are treated as glitches and retried.
pub const TOO_CLOSE_BELOW_MM: u16 = 5;
const TRIES: usize = 3;
const WINDOW: usize = 3;

/// Filtered distance like the vendor's `EasyDistanceSensor.read_mm`: up to 3
/// tries while the reading is > 8000 or < 5 mm, a moving average over the
/// last 3 good readings, clamped at 3000 mm ("nothing in range").
///
/// Two deliberate differences from the vendor: a failed bus read is not
/// averaged in as 0 mm (if all tries fail, the error is returned), and an
/// out-of-range result clears the average window and returns 3000 instead
/// of repeating the stale average.
pub struct EasyDistance<S> {
    inner: S,
    window: VecDeque<u16>,
}

impl<S: DistanceSensor> EasyDistance<S> {
    /// Wrap a raw sensor.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            window: VecDeque::with_capacity(WINDOW),
        }
    }

    /// The raw sensor.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Filtered distance in mm (5..=3000; 3000 = nothing in range; below 5
    /// only if every try read that close).
    pub fn read_mm(&mut self) -> Result<u16, BusError> {
        let mut last: Option<u16> = None;
        let mut last_err = None;
        for _ in 0..TRIES {
            match self.inner.read_mm() {
                Ok(mm) => {
                    last = Some(mm);
                    if (TOO_CLOSE_BELOW_MM..=OUT_OF_RANGE_ABOVE_MM).contains(&mm) {
                        break;
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        let mm = match (last, last_err) {
            (Some(mm), _) => mm,
            (None, Some(e)) => return Err(e),
            (None, None) => {
                return Err(BusError::Sensor {
                    device: "distance sensor".into(),
                    reason: "no reading".into(),
                })
            }
        };
        if mm > OUT_OF_RANGE_ABOVE_MM {
            self.window.clear();
            return Ok(NOTHING_IN_RANGE_MM);
        }
        if mm < TOO_CLOSE_BELOW_MM {
            return Ok(mm);
        }
        if self.window.len() == WINDOW {
            self.window.pop_front();
        }
        self.window.push_back(mm);
        let sum: u32 = self.window.iter().map(|&v| u32::from(v)).sum();
        let avg = (f64::from(sum) / self.window.len() as f64).round() as u16;
        Ok(avg.min(NOTHING_IN_RANGE_MM))
    }

    /// Filtered distance in cm.
    pub fn read_cm(&mut self) -> Result<f64, BusError> {
        Ok(f64::from(self.read_mm()?) / 10.0)
    }
}

impl<S: DistanceSensor> DistanceSensor for EasyDistance<S> {
    fn read_mm(&mut self) -> Result<u16, BusError> {
        EasyDistance::read_mm(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Script(VecDeque<Result<u16, BusError>>, usize);
    impl DistanceSensor for Script {
        fn read_mm(&mut self) -> Result<u16, BusError> {
            self.1 += 1;
            self.0.pop_front().unwrap_or(Ok(8190))
        }
    }
    fn easy(v: Vec<Result<u16, BusError>>) -> EasyDistance<Script> {
        EasyDistance::new(Script(v.into(), 0))
    }
    fn err() -> BusError {
        BusError::Transfer {
            device: "/dev/i2c-1".into(),
            reason: "nack".into(),
        }
    }

    #[test]
    fn moving_average_of_last_three() {
        let mut e = easy(vec![Ok(100), Ok(200), Ok(300), Ok(400)]);
        assert_eq!(e.read_mm().unwrap(), 100);
        assert_eq!(e.read_mm().unwrap(), 150);
        assert_eq!(e.read_mm().unwrap(), 200);
        assert_eq!(e.read_mm().unwrap(), 300); // (200+300+400)/3
    }

    #[test]
    fn retries_out_of_range_then_uses_good_reading() {
        let mut e = easy(vec![Ok(8190), Ok(2), Ok(450)]);
        assert_eq!(e.read_mm().unwrap(), 450);
        assert_eq!(e.inner_mut().1, 3);
    }

    #[test]
    fn three_out_of_range_gives_3000_and_clears_window() {
        let mut e = easy(vec![Ok(500), Ok(8190), Ok(8191), Ok(8190), Ok(700)]);
        assert_eq!(e.read_mm().unwrap(), 500);
        assert_eq!(e.read_mm().unwrap(), 3000);
        assert_eq!(e.read_mm().unwrap(), 700, "stale 500 not averaged in");
    }

    #[test]
    fn far_readings_clamp_at_3000() {
        let mut e = easy(vec![Ok(5000)]);
        assert_eq!(e.read_mm().unwrap(), 3000);
    }

    #[test]
    fn errors_are_retried_and_returned_when_all_fail() {
        let mut e = easy(vec![Err(err()), Ok(250)]);
        assert_eq!(e.read_mm().unwrap(), 250);
        let mut e = easy(vec![Err(err()), Err(err()), Err(err())]);
        assert_eq!(e.read_mm().unwrap_err(), err());
    }

    #[test]
    fn too_close_after_retries_is_returned_raw() {
        let mut e = easy(vec![Ok(3), Ok(2), Ok(1)]);
        assert_eq!(e.read_mm().unwrap(), 1);
        assert!(
            (e.read_cm().unwrap() - 300.0).abs() < 1e-9,
            "then far: 3000 mm"
        );
    }
}
