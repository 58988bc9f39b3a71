//! The robot program: MQTT commands, safety, telemetry, shadow, camera.
