//! The VL53L0X's long-range mode, set exactly as the vendor's DI_Sensors
//! `DistanceSensor.__init__` sets it, over any register bus.
//!
//! The vendor's distance sensor (and so `EasyDistanceSensor`) calls, after
//! the sensor's init:
//!
//! 1. `set_signal_rate_limit(0.1)`: 0.1 MCPS in Q9.7 into
//!    `FINAL_RANGE_CONFIG_MIN_COUNT_RATE_RTN_LIMIT` (0x44) → `0x000C`;
//! 2. `set_vcsel_pulse_period(PreRange, 18)`: phase limits, the period
//!    register, then the pre-range and MSRC timeouts re-timed for the new
//!    period, the timing budget re-applied and a phase calibration;
//! 3. `set_vcsel_pulse_period(FinalRange, 14)`: the same for the final range.
//!
//! The arithmetic follows the vendor's Python (true division, `int()` at
//! each register write), so the bytes written are the vendor's. The timing
//! budget the vendor re-applies is the one its init measured with the ST
//! default tuning ([`VENDOR_INIT_BUDGET_US`]).
//!
//! [`configure_long_range`] is pure register traffic over [`Registers`]:
//! tested against [`crate::sim::SimVl53l0x`]'s register file; the `hardware`
//! feature runs it on `/dev/i2c-1` right after the sensor's init.

use std::time::{Duration, Instant};

use crate::BusError;

/// `SYSRANGE_START`.
const SYSRANGE_START: u8 = 0x00;
/// `SYSTEM_SEQUENCE_CONFIG`.
const SEQUENCE_CONFIG: u8 = 0x01;
/// `SYSTEM_INTERRUPT_CLEAR`.
const INTERRUPT_CLEAR: u8 = 0x0B;
/// `RESULT_INTERRUPT_STATUS`.
const INTERRUPT_STATUS: u8 = 0x13;
/// `FINAL_RANGE_CONFIG_MIN_COUNT_RATE_RTN_LIMIT`.
const FINAL_RANGE_MIN_COUNT_RATE: u8 = 0x44;
/// `MSRC_CONFIG_TIMEOUT_MACROP`.
const MSRC_TIMEOUT: u8 = 0x46;
/// `FINAL_RANGE_CONFIG_VALID_PHASE_LOW` / `_HIGH`.
const FINAL_PHASE_LOW: u8 = 0x47;
const FINAL_PHASE_HIGH: u8 = 0x48;
/// `PRE_RANGE_CONFIG_VCSEL_PERIOD`, then its timeout (16 bits).
const PRE_VCSEL_PERIOD: u8 = 0x50;
const PRE_TIMEOUT: u8 = 0x51;
/// `PRE_RANGE_CONFIG_VALID_PHASE_LOW` / `_HIGH`.
const PRE_PHASE_LOW: u8 = 0x56;
const PRE_PHASE_HIGH: u8 = 0x57;
/// `FINAL_RANGE_CONFIG_VCSEL_PERIOD`, then its timeout (16 bits).
const FINAL_VCSEL_PERIOD: u8 = 0x70;
const FINAL_TIMEOUT: u8 = 0x71;
/// `GLOBAL_CONFIG_VCSEL_WIDTH`.
const VCSEL_WIDTH: u8 = 0x32;
/// `ALGO_PHASECAL_CONFIG_TIMEOUT` (page 0) and `ALGO_PHASECAL_LIM` (page 1).
const PHASECAL: u8 = 0x30;
/// Page select.
const PAGE: u8 = 0xFF;

/// The vendor's long range: signal rate limit 0.1 MCPS.
pub const LONG_RANGE_SIGNAL_RATE_MCPS: f64 = 0.1;
/// The vendor's long range: pre-range VCSEL period (PCLKs).
pub const LONG_RANGE_PRE_PCLKS: u8 = 18;
/// The vendor's long range: final-range VCSEL period (PCLKs).
pub const LONG_RANGE_FINAL_PCLKS: u8 = 14;
/// The measurement timing budget the vendor's init stores (µs) and its
/// `set_vcsel_pulse_period` re-applies: `get_measurement_timing_budget()`
/// over the ST default tuning (sequence 0xF8; MSRC 0x25, pre-range 0x0096 at
/// 14 PCLKs, final range 0x01FE at 10 PCLKs), in the vendor's float arithmetic.
pub const VENDOR_INIT_BUDGET_US: f64 = 33_973.790_51;
/// How long a reference calibration may take (the vendor's `io_timeout`).
const CALIBRATION_TIMEOUT: Duration = Duration::from_millis(500);

/// Register access to one VL53L0X (8-bit registers, 16-bit values big-endian).
pub trait Registers {
    /// Read one register.
    fn read_u8(&mut self, reg: u8) -> Result<u8, BusError>;
    /// Read two registers as a big-endian value, in one transaction.
    fn read_u16(&mut self, reg: u8) -> Result<u16, BusError>;
    /// Write `bytes` from `reg` on, in one transaction.
    fn write(&mut self, reg: u8, bytes: &[u8]) -> Result<(), BusError>;
}

fn w8<R: Registers + ?Sized>(r: &mut R, reg: u8, v: u8) -> Result<(), BusError> {
    r.write(reg, &[v])
}

fn w16<R: Registers + ?Sized>(r: &mut R, reg: u8, v: u16) -> Result<(), BusError> {
    r.write(reg, &v.to_be_bytes())
}

/// Which steps of a ranging sequence are on (`SYSTEM_SEQUENCE_CONFIG`).
#[derive(Debug, Clone, Copy)]
struct Enables {
    tcc: bool,
    dss: bool,
    msrc: bool,
    pre_range: bool,
    final_range: bool,
}

impl Enables {
    fn from_config(c: u8) -> Self {
        Self {
            tcc: c & 0x10 != 0,
            dss: c & 0x08 != 0,
            msrc: c & 0x04 != 0,
            pre_range: c & 0x40 != 0,
            final_range: c & 0x80 != 0,
        }
    }
}

/// The sequence steps' timeouts as the vendor's `get_sequence_step_timeouts`.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    final_pclks: u8,
    msrc_us: f64,
    pre_mclks: f64,
    pre_us: f64,
    final_us: f64,
}

fn decode_vcsel_period(reg: u8) -> u8 {
    (reg.wrapping_add(1)) << 1
}

fn encode_vcsel_period(pclks: u8) -> u8 {
    (pclks >> 1) - 1
}

/// Macro period in ns (float, as the vendor's Python 3 division gives).
fn macro_period_ns(pclks: u8) -> f64 {
    ((2304.0 * f64::from(pclks) * 1655.0) + 500.0) / 1000.0
}

fn mclks_to_us(mclks: f64, pclks: u8) -> f64 {
    let m = macro_period_ns(pclks);
    ((mclks * m) + (m / 2.0)) / 1000.0
}

fn us_to_mclks(us: f64, pclks: u8) -> f64 {
    let m = macro_period_ns(pclks);
    ((us * 1000.0) + (m / 2.0)) / m
}

fn decode_timeout(reg: u16) -> f64 {
    f64::from(u32::from(reg & 0xFF) << ((reg & 0xFF00) >> 8)) + 1.0
}

/// The vendor's `encode_timeout`, float halving included.
fn encode_timeout(mclks: f64) -> u16 {
    if mclks <= 0.0 {
        return 0;
    }
    let mut ls = mclks - 1.0;
    let mut ms: u16 = 0;
    while (ls as i64) & !0xFF > 0 {
        ls /= 2.0;
        ms += 1;
    }
    (ms << 8) | ((ls as i64 & 0xFF) as u16)
}

fn enables<R: Registers + ?Sized>(r: &mut R) -> Result<Enables, BusError> {
    Ok(Enables::from_config(r.read_u8(SEQUENCE_CONFIG)?))
}

fn timeouts<R: Registers + ?Sized>(r: &mut R, pre_range: bool) -> Result<Timeouts, BusError> {
    let pre_pclks = decode_vcsel_period(r.read_u8(PRE_VCSEL_PERIOD)?);
    let msrc_mclks = f64::from(r.read_u8(MSRC_TIMEOUT)?) + 1.0;
    let pre_mclks = decode_timeout(r.read_u16(PRE_TIMEOUT)?);
    let final_pclks = decode_vcsel_period(r.read_u8(FINAL_VCSEL_PERIOD)?);
    let mut final_mclks = decode_timeout(r.read_u16(FINAL_TIMEOUT)?);
    if pre_range {
        final_mclks -= pre_mclks;
    }
    Ok(Timeouts {
        final_pclks,
        msrc_us: mclks_to_us(msrc_mclks, pre_pclks),
        pre_mclks,
        pre_us: mclks_to_us(pre_mclks, pre_pclks),
        final_us: mclks_to_us(final_mclks, final_pclks),
    })
}

/// The vendor's `set_measurement_timing_budget`: the final range gets what
/// the other steps leave of `budget_us`. Too small a budget writes nothing.
fn set_timing_budget<R: Registers + ?Sized>(r: &mut R, budget_us: f64) -> Result<(), BusError> {
    let e = enables(r)?;
    let t = timeouts(r, e.pre_range)?;
    let mut used = 1320.0 + 960.0;
    if e.tcc {
        used += t.msrc_us + 590.0;
    }
    if e.dss {
        used += 2.0 * (t.msrc_us + 690.0);
    } else if e.msrc {
        used += t.msrc_us + 660.0;
    }
    if e.pre_range {
        used += t.pre_us + 660.0;
    }
    if e.final_range {
        used += 550.0;
        if used > budget_us {
            return Ok(());
        }
        let mut mclks = us_to_mclks(budget_us - used, t.final_pclks);
        if e.pre_range {
            mclks += t.pre_mclks;
        }
        w16(r, FINAL_TIMEOUT, encode_timeout(mclks))?;
    }
    Ok(())
}

/// The vendor's phase calibration after a period change: sequence 0x02, a
/// single reference calibration (start, wait for the interrupt up to 0.5 s,
/// clear, stop), then the sequence config restored. Like the vendor, a
/// calibration that never signals is not an error.
fn phase_calibration<R: Registers + ?Sized>(r: &mut R) -> Result<(), BusError> {
    let sequence = r.read_u8(SEQUENCE_CONFIG)?;
    w8(r, SEQUENCE_CONFIG, 0x02)?;
    w8(r, SYSRANGE_START, 0x01)?;
    let started = Instant::now();
    let mut done = false;
    while started.elapsed() <= CALIBRATION_TIMEOUT {
        if r.read_u8(INTERRUPT_STATUS)? & 0x07 != 0 {
            done = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if done {
        w8(r, INTERRUPT_CLEAR, 0x01)?;
        w8(r, SYSRANGE_START, 0x00)?;
    }
    w8(r, SEQUENCE_CONFIG, sequence)
}

/// The pre-range half of the vendor's `set_vcsel_pulse_period`.
fn set_pre_range_period<R: Registers + ?Sized>(
    r: &mut R,
    pclks: u8,
    t: &Timeouts,
) -> Result<(), BusError> {
    let phase_high = match pclks {
        12 => 0x18,
        14 => 0x30,
        16 => 0x40,
        18 => 0x50,
        _ => return Err(invalid_period("pre-range", pclks)),
    };
    w8(r, PRE_PHASE_HIGH, phase_high)?;
    w8(r, PRE_PHASE_LOW, 0x08)?;
    w8(r, PRE_VCSEL_PERIOD, encode_vcsel_period(pclks))?;
    w16(r, PRE_TIMEOUT, encode_timeout(us_to_mclks(t.pre_us, pclks)))?;
    let msrc = us_to_mclks(t.msrc_us, pclks);
    let msrc_reg = if msrc > 256.0 {
        255
    } else {
        (msrc - 1.0) as u8
    };
    w8(r, MSRC_TIMEOUT, msrc_reg)
}

/// The final-range half of the vendor's `set_vcsel_pulse_period`.
fn set_final_range_period<R: Registers + ?Sized>(
    r: &mut R,
    pclks: u8,
    pre_range: bool,
    t: &Timeouts,
) -> Result<(), BusError> {
    let (phase_high, width, phasecal_timeout, phasecal_lim) = match pclks {
        8 => (0x10, 0x02, 0x0C, 0x30),
        10 => (0x28, 0x03, 0x09, 0x20),
        12 => (0x38, 0x03, 0x08, 0x20),
        14 => (0x48, 0x03, 0x07, 0x20),
        _ => return Err(invalid_period("final-range", pclks)),
    };
    w8(r, FINAL_PHASE_HIGH, phase_high)?;
    w8(r, FINAL_PHASE_LOW, 0x08)?;
    w8(r, VCSEL_WIDTH, width)?;
    w8(r, PHASECAL, phasecal_timeout)?;
    w8(r, PAGE, 0x01)?;
    w8(r, PHASECAL, phasecal_lim)?;
    w8(r, PAGE, 0x00)?;
    w8(r, FINAL_VCSEL_PERIOD, encode_vcsel_period(pclks))?;
    let mut mclks = us_to_mclks(t.final_us, pclks);
    if pre_range {
        mclks += t.pre_mclks;
    }
    w16(r, FINAL_TIMEOUT, encode_timeout(mclks))
}

fn invalid_period(which: &str, pclks: u8) -> BusError {
    BusError::Sensor {
        device: "VL53L0X".into(),
        reason: format!("{pclks} PCLKs is not a valid {which} VCSEL period"),
    }
}

/// Which VCSEL period [`set_vcsel_pulse_period`] changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VcselPeriod {
    /// Pre-range: 12, 14, 16 or 18 PCLKs.
    PreRange,
    /// Final range: 8, 10, 12 or 14 PCLKs.
    FinalRange,
}

/// The vendor's `set_vcsel_pulse_period(kind, pclks)` with the timing
/// budget `budget_us` re-applied afterwards.
pub fn set_vcsel_pulse_period<R: Registers + ?Sized>(
    r: &mut R,
    kind: VcselPeriod,
    pclks: u8,
    budget_us: f64,
) -> Result<(), BusError> {
    let e = enables(r)?;
    let t = timeouts(r, e.pre_range)?;
    match kind {
        VcselPeriod::PreRange => set_pre_range_period(r, pclks, &t)?,
        VcselPeriod::FinalRange => set_final_range_period(r, pclks, e.pre_range, &t)?,
    }
    set_timing_budget(r, budget_us)?;
    phase_calibration(r)
}

/// The vendor's `set_signal_rate_limit(mcps)`: Q9.7 fixed point, truncated.
pub fn set_signal_rate_limit<R: Registers + ?Sized>(r: &mut R, mcps: f64) -> Result<(), BusError> {
    if !(0.0..=511.99).contains(&mcps) {
        return Err(BusError::Sensor {
            device: "VL53L0X".into(),
            reason: format!("signal rate limit {mcps} MCPS is outside 0..=511.99"),
        });
    }
    w16(r, FINAL_RANGE_MIN_COUNT_RATE, (mcps * 128.0) as u16)
}

/// Long range (about 2 m) as DI_Sensors' `DistanceSensor` sets it after
/// init: signal rate limit 0.1 MCPS, pre-range period 18, final-range 14.
pub fn configure_long_range<R: Registers + ?Sized>(r: &mut R) -> Result<(), BusError> {
    set_signal_rate_limit(r, LONG_RANGE_SIGNAL_RATE_MCPS)?;
    set_vcsel_pulse_period(
        r,
        VcselPeriod::PreRange,
        LONG_RANGE_PRE_PCLKS,
        VENDOR_INIT_BUDGET_US,
    )?;
    set_vcsel_pulse_period(
        r,
        VcselPeriod::FinalRange,
        LONG_RANGE_FINAL_PCLKS,
        VENDOR_INIT_BUDGET_US,
    )
}

/// `get_measurement_timing_budget()` as the vendor computes it (µs), for the
/// sequence config and timeouts now in the registers.
pub fn measurement_timing_budget_us<R: Registers + ?Sized>(r: &mut R) -> Result<f64, BusError> {
    let e = enables(r)?;
    let t = timeouts(r, e.pre_range)?;
    let mut budget = 1910.0 + 960.0;
    if e.tcc {
        budget += t.msrc_us + 590.0;
    }
    if e.dss {
        budget += 2.0 * (t.msrc_us + 690.0);
    } else if e.msrc {
        budget += t.msrc_us + 660.0;
    }
    if e.pre_range {
        budget += t.pre_us + 660.0;
    }
    if e.final_range {
        budget += t.final_us + 550.0;
    }
    Ok(budget)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimVl53l0x;

    /// The vendor's writes, in order, for the long-range set-up from the ST
    /// default tuning (worked out by running DI_Sensors' arithmetic on the
    /// same starting registers).
    const VENDOR_LONG_RANGE_WRITES: &[(u8, &[u8])] = &[
        (0x44, &[0x00, 0x0C]), // signal rate limit 0.1 MCPS (Q9.7)
        (0x57, &[0x50]),       // pre-range: valid phase high for 18 PCLKs
        (0x56, &[0x08]),       // valid phase low
        (0x50, &[0x08]),       // period register: 18 PCLKs
        (0x51, &[0x00, 0x75]), // pre-range timeout re-timed
        (0x46, &[0x1D]),       // MSRC timeout re-timed
        (0x71, &[0x02, 0x8B]), // timing budget re-applied (final range)
        (0x01, &[0x02]),       // phase calibration
        (0x00, &[0x01]),
        (0x0B, &[0x01]),
        (0x00, &[0x00]),
        (0x01, &[0xE8]), // sequence config restored
        (0x48, &[0x48]), // final range: valid phase high for 14 PCLKs
        (0x47, &[0x08]), // valid phase low
        (0x32, &[0x03]), // VCSEL width
        (0x30, &[0x07]), // phasecal timeout
        (0xFF, &[0x01]),
        (0x30, &[0x20]), // phasecal limit (page 1)
        (0xFF, &[0x00]),
        (0x70, &[0x06]),       // period register: 14 PCLKs
        (0x71, &[0x01, 0xD7]), // final-range timeout re-timed
        (0x71, &[0x01, 0xD7]), // timing budget re-applied
        (0x01, &[0x02]),       // phase calibration
        (0x00, &[0x01]),
        (0x0B, &[0x01]),
        (0x00, &[0x00]),
        (0x01, &[0xE8]),
    ];

    #[test]
    fn long_range_writes_the_vendors_registers_in_the_vendors_order() {
        let mut s = SimVl53l0x::after_init();
        configure_long_range(&mut s).unwrap();
        let got: Vec<(u8, Vec<u8>)> = s.writes().to_vec();
        let want: Vec<(u8, Vec<u8>)> = VENDOR_LONG_RANGE_WRITES
            .iter()
            .map(|(r, b)| (*r, b.to_vec()))
            .collect();
        assert_eq!(got, want);
        // The sensor now ranges with the long periods.
        assert_eq!(s.register(0x50), 0x08, "pre-range 18 PCLKs");
        assert_eq!(s.register(0x70), 0x06, "final range 14 PCLKs");
    }

    #[test]
    fn the_init_budget_is_the_vendors_measurement_over_the_default_tuning() {
        let mut s = SimVl53l0x::after_init();
        s.set_register(0x01, 0xF8); // the sequence config the vendor's init measures with
        let b = measurement_timing_budget_us(&mut s).unwrap();
        assert!((b - VENDOR_INIT_BUDGET_US).abs() < 0.01, "{b}");
    }

    #[test]
    fn timeouts_encode_as_the_vendor_does() {
        assert_eq!(decode_timeout(0x01FE), 509.0);
        assert_eq!(decode_timeout(0x0096), 151.0);
        assert_eq!(encode_timeout(509.0), 0x01FE);
        assert_eq!(encode_timeout(0.0), 0);
        assert_eq!(encode_vcsel_period(18), 8);
        assert_eq!(decode_vcsel_period(8), 18);
    }

    #[test]
    fn a_bad_period_or_rate_is_refused_before_any_write() {
        let mut s = SimVl53l0x::after_init();
        let e = set_vcsel_pulse_period(&mut s, VcselPeriod::PreRange, 13, VENDOR_INIT_BUDGET_US)
            .unwrap_err();
        assert!(e.to_string().contains("13 PCLKs"), "{e}");
        assert!(set_signal_rate_limit(&mut s, 600.0).is_err());
        assert!(s.writes().is_empty());
    }

    #[test]
    fn a_bus_failure_is_returned() {
        let mut s = SimVl53l0x::after_init();
        s.set_failing(true);
        assert!(configure_long_range(&mut s).is_err());
    }
}
