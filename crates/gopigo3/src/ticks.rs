//! Which motors a robot has (6 or 16 encoder ticks per motor turn), decided
//! the way the vendor's `gopigo3.py` (`GoPiGo3.load_robot_constants`) does.
//!
//! Robots built from 2021 have 16-tick motors; driving them with the 6-tick
//! constant covers 6/16 = 37.5 % of the commanded distance. The vendor's
//! driver decides, in this order:
//!
//! 1. `~/.gpg3_config.json`, when it parses as JSON with a positive
//!    `wheel-diameter` and `wheel-base-width` (and positive `ticks` and
//!    `motor_gear_ratio` when present): its `ticks`, or 6 when the key is
//!    absent;
//! 2. otherwise (file missing, empty, unreadable or invalid): 16 when the
//!    board's serial number (`get_id()`, 32 upper-case hex characters) is in
//!    the vendor's list of 16-tick robots, `.gpg3_list_of_serial_numbers.pkl`
//!    in the same directory; 6 when it is not or the list is missing.
//!
//! The list is a Python pickle of serial strings; [`serials_in_list`] takes
//! every run of exactly 32 hex characters from it, which reads the vendor's
//! protocol-0 file and the binary protocols alike without a pickle parser.
//! Unlike the vendor we never write `~/.gpg3_config.json`.

use std::path::{Path, PathBuf};

/// The vendor's file name for its robot constants, in the user's home.
pub const VENDOR_CONFIG_FILE: &str = ".gpg3_config.json";
/// The vendor's list of 16-tick serial numbers, next to the config file.
pub const SERIAL_LIST_FILE: &str = ".gpg3_list_of_serial_numbers.pkl";

/// Where a tick count came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicksSource {
    /// The `ticks` of the vendor's config file (6 when the file has no `ticks`).
    VendorConfig(PathBuf),
    /// The board's serial number is in the vendor's 16-tick list.
    SerialList(PathBuf),
    /// Neither said 16: the vendor's default.
    Default,
}

/// A decided tick count and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicksDecision {
    /// Encoder ticks per motor turn.
    pub ticks: u32,
    /// What decided it.
    pub source: TicksSource,
}

impl std::fmt::Display for TicksDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            TicksSource::VendorConfig(p) => {
                write!(f, "{} ticks (\"ticks\" in {})", self.ticks, p.display())
            }
            TicksSource::SerialList(p) => write!(
                f,
                "{} ticks (the board's serial number is in {})",
                self.ticks,
                p.display()
            ),
            TicksSource::Default => write!(
                f,
                "{} ticks (no vendor config or 16-tick serial list says otherwise)",
                self.ticks
            ),
        }
    }
}

/// `ticks` from the text of a vendor config file, as `load_robot_constants`
/// reads it: `None` when the vendor would fall back to the serial list.
pub fn ticks_from_vendor_config(text: &str) -> Option<u32> {
    let data: serde_json::Value = serde_json::from_str(text).ok()?;
    let positive = |key: &str| data.get(key)?.as_f64().filter(|v| *v > 0.0);
    positive("wheel-diameter")?;
    positive("wheel-base-width")?;
    let ticks = match data.get("ticks") {
        None => 6.0,
        Some(v) => v.as_f64().filter(|t| *t > 0.0)?,
    };
    if data.get("motor_gear_ratio").is_some() {
        positive("motor_gear_ratio")?;
    }
    // The vendor keeps whatever number it finds; a tick count is whole.
    (ticks.fract() == 0.0 && ticks <= f64::from(u32::MAX)).then_some(ticks as u32)
}

/// The serial numbers in the vendor's list: every run of exactly 32 hex
/// characters, upper-cased.
pub fn serials_in_list(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| !b.is_ascii_hexdigit())
        .filter(|run| run.len() == 32)
        .map(|run| String::from_utf8_lossy(run).to_ascii_uppercase())
        .collect()
}

/// The vendor's decision from the files' contents (`None`: file absent or
/// unreadable) and the board's serial number.
pub fn decide(
    config: Option<(&Path, &str)>,
    serial_list: Option<(&Path, &[u8])>,
    serial: &str,
) -> TicksDecision {
    if let Some((path, text)) = config {
        if let Some(ticks) = ticks_from_vendor_config(text) {
            return TicksDecision {
                ticks,
                source: TicksSource::VendorConfig(path.to_path_buf()),
            };
        }
    }
    if let Some((path, bytes)) = serial_list {
        let serial = serial.to_ascii_uppercase();
        if serials_in_list(bytes).contains(&serial) {
            return TicksDecision {
                ticks: 16,
                source: TicksSource::SerialList(path.to_path_buf()),
            };
        }
    }
    TicksDecision {
        ticks: 6,
        source: TicksSource::Default,
    }
}

/// [`decide`] with the files read from disk: the vendor config at
/// `config_path` and the serial list in the same directory.
pub fn detect(config_path: &Path, serial: &str) -> TicksDecision {
    let text = std::fs::read_to_string(config_path).ok();
    let list_path = config_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(SERIAL_LIST_FILE);
    let list = std::fs::read(&list_path).ok();
    decide(
        text.as_deref().map(|t| (config_path, t)),
        list.as_deref().map(|b| (list_path.as_path(), b)),
        serial,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERIAL: &str = "0183223A5152433037202020FF192335";

    /// The start of a protocol-0 pickle of a list of serial strings, as the
    /// vendor's installer copies it.
    fn pickle(serials: &[&str]) -> Vec<u8> {
        let mut s = String::from("(lp0\nS''\np1\n");
        for (i, x) in serials.iter().enumerate() {
            s.push_str(&format!("aS'{x}'\np{}\n", i + 2));
        }
        s.push_str("a.");
        s.into_bytes()
    }

    fn p(s: &str) -> &Path {
        Path::new(s)
    }

    #[test]
    fn vendor_config_is_read_as_the_vendor_reads_it() {
        let full = r#"{"wheel-diameter": 66.5, "wheel-base-width": 117, "ticks": 16, "motor_gear_ratio": 120}"#;
        assert_eq!(ticks_from_vendor_config(full), Some(16));
        // no "ticks": the class default, 6, without looking at the serial list
        assert_eq!(
            ticks_from_vendor_config(r#"{"wheel-diameter": 66.5, "wheel-base-width": 117}"#),
            Some(6)
        );
        for fallback in [
            "",                                                  // empty (JSONDecodeError)
            r#"{"wheel-base-width": 117, "ticks": 16}"#,         // KeyError
            r#"{"wheel-diameter": 0, "wheel-base-width": 117}"#, // not positive
            r#"{"wheel-diameter": 66.5, "wheel-base-width": 117, "ticks": -1}"#,
            r#"{"wheel-diameter": 66.5, "wheel-base-width": 117, "ticks": "16"}"#,
        ] {
            assert_eq!(ticks_from_vendor_config(fallback), None, "{fallback}");
        }
    }

    #[test]
    fn serial_list_reads_the_vendors_pickle() {
        let list = pickle(&["00A513C35152415447202020FF192B1C", SERIAL]);
        assert_eq!(
            serials_in_list(&list),
            vec![
                "00A513C35152415447202020FF192B1C".to_string(),
                SERIAL.into()
            ]
        );
        // binary pickles hold the same characters between length and opcode bytes
        let mut binary = vec![0x80, 0x04, 0x95, 0x8c, 0x20];
        binary.extend_from_slice(SERIAL.as_bytes());
        binary.extend_from_slice(&[0x94, 0x61, 0x2e]);
        assert_eq!(serials_in_list(&binary), vec![SERIAL.to_string()]);
    }

    #[test]
    fn decision_follows_the_vendors_order() {
        let cfg16 = r#"{"wheel-diameter": 66.5, "wheel-base-width": 117, "ticks": 16}"#;
        let cfg6 = r#"{"wheel-diameter": 66.5, "wheel-base-width": 117, "ticks": 6}"#;
        let listed = pickle(&[SERIAL]);
        let other = pickle(&["00A513C35152415447202020FF192B1C"]);
        let c = p("/home/pi/.gpg3_config.json");
        let l = p("/home/pi/.gpg3_list_of_serial_numbers.pkl");
        // the config file wins, even over a listed serial
        let d = decide(Some((c, cfg6)), Some((l, &listed)), SERIAL);
        assert_eq!(d.ticks, 6);
        assert_eq!(decide(Some((c, cfg16)), None, SERIAL).ticks, 16);
        // no usable config: the serial list decides
        let d = decide(Some((c, "")), Some((l, &listed)), SERIAL);
        assert_eq!(
            (d.ticks, &d.source),
            (16, &TicksSource::SerialList(l.into()))
        );
        assert_eq!(
            decide(None, Some((l, &listed)), &SERIAL.to_lowercase()).ticks,
            16
        );
        assert_eq!(decide(None, Some((l, &other)), SERIAL).ticks, 6);
        let d = decide(None, None, SERIAL);
        assert_eq!((d.ticks, &d.source), (6, &TicksSource::Default));
        assert!(d.to_string().starts_with("6 ticks"), "{d}");
    }

    #[test]
    fn detect_reads_both_files_from_the_config_directory() {
        let dir = std::env::temp_dir().join(format!("gopigo3-ticks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join(VENDOR_CONFIG_FILE);
        assert_eq!(detect(&cfg, SERIAL).source, TicksSource::Default);
        std::fs::write(dir.join(SERIAL_LIST_FILE), pickle(&[SERIAL])).unwrap();
        assert_eq!(detect(&cfg, SERIAL).ticks, 16);
        std::fs::write(&cfg, r#"{"wheel-diameter": 66.5, "wheel-base-width": 117}"#).unwrap();
        assert_eq!(
            detect(&cfg, SERIAL).ticks,
            6,
            "a valid config without ticks means 6"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A simulated robot whose motors have `motor_ticks`, driven by a driver
    /// told `driver_ticks`: how far (mm) `drive_cm(50)` takes it.
    fn driven_mm(motor_ticks: u32, driver_ticks: impl FnOnce(&str) -> u32) -> f64 {
        use crate::sim::{SimBoard, SimConfig};
        let board = SimBoard::new(SimConfig {
            geometry: crate::Geometry {
                encoder_ticks_per_rotation: motor_ticks,
                ..crate::Geometry::default()
            },
            ..SimConfig::default()
        });
        let sim = board.handle();
        let mut g = crate::GoPiGo3::new(board, crate::Geometry::default()).unwrap();
        let ticks = driver_ticks(&g.serial_id().unwrap());
        g.set_geometry(crate::Geometry {
            encoder_ticks_per_rotation: ticks,
            ..crate::Geometry::default()
        })
        .unwrap();
        let x0 = sim.pose().x_mm;
        g.drive_cm(50.0, true).unwrap();
        sim.pose().x_mm - x0
    }

    #[test]
    fn detected_ticks_drive_the_commanded_distance_on_6_and_16_tick_motors() {
        let dir = std::env::temp_dir().join(format!("gopigo3-drive-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join(VENDOR_CONFIG_FILE);
        // The simulated board's serial is in the 16-tick list: detection says 16.
        let serial = {
            let b = crate::sim::SimConfig::default().serial;
            b.iter().map(|x| format!("{x:02X}")).collect::<String>()
        };
        std::fs::write(dir.join(SERIAL_LIST_FILE), pickle(&[&serial])).unwrap();
        let sixteen = driven_mm(16, |s| detect(&cfg, s).ticks);
        assert!(
            (sixteen - 500.0).abs() < 10.0,
            "16-tick motors drove {sixteen} mm"
        );
        // Not listed: 6, right for 6-tick motors.
        std::fs::write(dir.join(SERIAL_LIST_FILE), pickle(&[])).unwrap();
        let six = driven_mm(6, |s| detect(&cfg, s).ticks);
        assert!((six - 500.0).abs() < 10.0, "6-tick motors drove {six} mm");
        // What the issue warned of: 16-tick motors driven as 6-tick ones.
        let short = driven_mm(16, |s| detect(&cfg, s).ticks);
        assert!((short - 187.5).abs() < 10.0, "{short} mm, 37.5 % of 500");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
