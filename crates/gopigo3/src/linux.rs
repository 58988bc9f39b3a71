//! Linux backend (cargo feature `hardware`): the board on spidev with GPIO23
//! held high, the power button on GPIO22, and the VL53L0X distance sensor
//! on an I2C bus in the vendor's long-range mode.
//!
//! Only builds on Linux-like targets; logic is tested with mocks and the
//! simulated board, not here.

use std::path::{Path, PathBuf};

use spidev::{SpiModeFlags, Spidev, SpidevOptions, SpidevTransfer};

use crate::{BusError, DistanceSensor, PowerButton, SpiBus};

/// Where the board is and how to keep it powered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxSpiConfig {
    /// spidev node (`/dev/spidev0.1`: bus 0, CE1).
    pub spi_path: PathBuf,
    /// Clock (500 kHz).
    pub speed_hz: u32,
    /// Request GPIO23 as an output held high for as long as the bus lives.
    /// Without it the board assumes the Pi is off and the motors do not run.
    /// Set to false when the vendor's `gopigo3_power` service already does it.
    pub hold_power_line: bool,
    /// GPIO chip holding the power line; `None` = find the line named
    /// `GPIO23` on any chip, falling back to `/dev/gpiochip0`.
    pub gpio_chip: Option<PathBuf>,
    /// Line offset of the power line on that chip (23).
    pub power_line: u32,
}

impl Default for LinuxSpiConfig {
    fn default() -> Self {
        Self {
            spi_path: PathBuf::from("/dev/spidev0.1"),
            speed_hz: 500_000,
            hold_power_line: true,
            gpio_chip: None,
            power_line: 23,
        }
    }
}

/// The GoPiGo3 on Linux spidev.
pub struct LinuxSpi {
    spi: Spidev,
    device: String,
    // Kept alive: dropping the request releases the line.
    _power: Option<gpiocdev::Request>,
}

impl LinuxSpi {
    /// Open and configure the SPI device (mode 0, 8 bits, `speed_hz`) and
    /// take GPIO23 high.
    pub fn open(config: &LinuxSpiConfig) -> Result<Self, BusError> {
        let device = config.spi_path.display().to_string();
        let mut spi = Spidev::open(&config.spi_path).map_err(|e| BusError::Open {
            device: device.clone(),
            reason: format!(
                "{e}; enable SPI (raspi-config → Interface Options → SPI) and check the \
                 user is in the spi group"
            ),
        })?;
        let options = SpidevOptions::new()
            .bits_per_word(8)
            .max_speed_hz(config.speed_hz)
            .mode(SpiModeFlags::SPI_MODE_0)
            .build();
        spi.configure(&options).map_err(|e| BusError::Open {
            device: device.clone(),
            reason: format!("configuring mode 0 at {} Hz: {e}", config.speed_hz),
        })?;
        let power = if config.hold_power_line {
            Some(hold_power_line(config)?)
        } else {
            None
        };
        Ok(Self {
            spi,
            device,
            _power: power,
        })
    }
}

fn hold_power_line(config: &LinuxSpiConfig) -> Result<gpiocdev::Request, BusError> {
    let (chip, offset) = match &config.gpio_chip {
        Some(chip) => (chip.clone(), config.power_line),
        None => match gpiocdev::find_named_line(&format!("GPIO{}", config.power_line)) {
            Some(found) => (found.chip, found.info.offset),
            None => (PathBuf::from("/dev/gpiochip0"), config.power_line),
        },
    };
    gpiocdev::Request::builder()
        .on_chip(chip.as_path())
        .with_consumer("gopigo3")
        .with_line(offset)
        .as_output(gpiocdev::line::Value::Active)
        .request()
        .map_err(|e| BusError::Open {
            device: format!(
                "{} line {offset} (GPIO{})",
                chip.display(),
                config.power_line
            ),
            reason: format!(
                "{e}; the line must be held high for the motors to run. If the vendor's \
                 gopigo3_power service holds it, set hold_power_line = false"
            ),
        })
}

impl SpiBus for LinuxSpi {
    fn transfer(&mut self, tx: &[u8], rx: &mut [u8]) -> Result<(), BusError> {
        if tx.len() != rx.len() {
            return Err(BusError::Transfer {
                device: self.device.clone(),
                reason: format!("tx {} bytes but rx {}", tx.len(), rx.len()),
            });
        }
        let mut t = SpidevTransfer::read_write(tx, rx);
        self.spi.transfer(&mut t).map_err(|e| BusError::Transfer {
            device: self.device.clone(),
            reason: e.to_string(),
        })
    }
}

/// Open the board with `config` and run the board check.
pub fn open_gopigo3(
    config: &LinuxSpiConfig,
    geometry: crate::Geometry,
) -> Result<crate::GoPiGo3<LinuxSpi>, crate::Gopigo3Error> {
    crate::GoPiGo3::new(LinuxSpi::open(config)?, geometry)
}

/// The VL53L0X time-of-flight sensor on a Linux I2C bus.
pub struct Vl53l0xSensor {
    dev: vl53l0x::VL53L0x<linux_embedded_hal::I2cdev>,
    device: String,
}

/// Addresses tried by [`Vl53l0xSensor::open_default`]: the power-on default,
/// then the one the vendor's library moves the sensor to.
pub const VL53L0X_ADDRESSES: [u8; 2] = [0x29, 0x2A];

impl Vl53l0xSensor {
    /// Open on `/dev/i2c-1`, trying 0x29 then 0x2A.
    pub fn open_default() -> Result<Self, BusError> {
        Self::open(Path::new("/dev/i2c-1"), &VL53L0X_ADDRESSES)
    }

    /// Open on `i2c_path`, trying each address until one answers as a VL53L0X.
    pub fn open(i2c_path: &Path, addresses: &[u8]) -> Result<Self, BusError> {
        let device = i2c_path.display().to_string();
        let mut reasons = Vec::new();
        for &addr in addresses {
            let i2c = linux_embedded_hal::I2cdev::new(i2c_path).map_err(|e| BusError::Open {
                device: device.clone(),
                reason: format!("{e}; enable I2C (raspi-config) and check permissions"),
            })?;
            match vl53l0x::VL53L0x::with_address(i2c, addr) {
                Ok(dev) => {
                    let device = format!("{device}@0x{addr:02X}");
                    set_long_range(i2c_path, addr, &device)?;
                    return Ok(Self { dev, device });
                }
                Err(e) => reasons.push(format!("0x{addr:02X}: {e:?}")),
            }
        }
        Err(BusError::Open {
            device,
            reason: format!(
                "no VL53L0X answered ({}); is the distance sensor plugged into an I2C port?",
                reasons.join(", ")
            ),
        })
    }
}

/// The sensor's registers through a second handle on the same bus (the
/// `vl53l0x` crate keeps its own and has no long-range call).
struct I2cRegisters {
    dev: linux_embedded_hal::I2cdev,
    addr: u8,
    device: String,
}

impl I2cRegisters {
    fn err(&self, e: impl std::fmt::Debug) -> BusError {
        BusError::Transfer {
            device: self.device.clone(),
            reason: format!("{e:?}"),
        }
    }
}

impl crate::vl53l0x::Registers for I2cRegisters {
    fn read_u8(&mut self, reg: u8) -> Result<u8, BusError> {
        use embedded_hal::i2c::I2c;
        let mut b = [0u8; 1];
        let r = self.dev.write_read(self.addr, &[reg], &mut b);
        r.map_err(|e| self.err(e))?;
        Ok(b[0])
    }

    fn read_u16(&mut self, reg: u8) -> Result<u16, BusError> {
        use embedded_hal::i2c::I2c;
        let mut b = [0u8; 2];
        let r = self.dev.write_read(self.addr, &[reg], &mut b);
        r.map_err(|e| self.err(e))?;
        Ok(u16::from_be_bytes(b))
    }

    fn write(&mut self, reg: u8, bytes: &[u8]) -> Result<(), BusError> {
        use embedded_hal::i2c::I2c;
        let mut buf = Vec::with_capacity(bytes.len() + 1);
        buf.push(reg);
        buf.extend_from_slice(bytes);
        let r = self.dev.write(self.addr, &buf);
        r.map_err(|e| self.err(e))
    }
}

/// Long range as DI_Sensors sets it, right after the sensor's init.
fn set_long_range(i2c_path: &Path, addr: u8, device: &str) -> Result<(), BusError> {
    let dev = linux_embedded_hal::I2cdev::new(i2c_path).map_err(|e| BusError::Open {
        device: device.to_string(),
        reason: format!("{e}; enable I2C (raspi-config) and check permissions"),
    })?;
    let mut regs = I2cRegisters {
        dev,
        addr,
        device: device.to_string(),
    };
    crate::vl53l0x::configure_long_range(&mut regs)
}

/// The power button: GPIO22 as an input with the pull-down the vendor's
/// `gopigo3_power` sets; high = shutdown requested.
pub struct Gpio22Button {
    line: gpiocdev::Request,
    offset: u32,
    device: String,
}

impl Gpio22Button {
    /// Request the line named `GPIO22` (or offset 22 on `/dev/gpiochip0`).
    /// Fails while another program (the vendor's `gopigo3_power`) holds it.
    pub fn open() -> Result<Self, BusError> {
        let (chip, offset) = match gpiocdev::find_named_line("GPIO22") {
            Some(found) => (found.chip, found.info.offset),
            None => (PathBuf::from("/dev/gpiochip0"), 22),
        };
        let device = format!("{} line {offset} (GPIO22)", chip.display());
        let line = gpiocdev::Request::builder()
            .on_chip(chip.as_path())
            .with_consumer("gopigo3-power-button")
            .with_line(offset)
            .as_input()
            .with_bias(gpiocdev::line::Bias::PullDown)
            .request()
            .map_err(|e| BusError::Open {
                device: device.clone(),
                reason: format!(
                    "{e}; if the vendor's gopigo3_power service runs, it owns the button: \
                     set [board] hold_power_line = false"
                ),
            })?;
        Ok(Self {
            line,
            offset,
            device,
        })
    }
}

impl PowerButton for Gpio22Button {
    fn pressed(&mut self) -> Result<bool, BusError> {
        self.line
            .value(self.offset)
            .map(|v| v == gpiocdev::line::Value::Active)
            .map_err(|e| BusError::Transfer {
                device: self.device.clone(),
                reason: e.to_string(),
            })
    }
}

impl DistanceSensor for Vl53l0xSensor {
    fn read_mm(&mut self) -> Result<u16, BusError> {
        self.dev
            .read_range_single_millimeters_blocking()
            .map_err(|e| BusError::Sensor {
                device: self.device.clone(),
                reason: format!("{e:?}"),
            })
    }
}
