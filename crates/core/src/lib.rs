//! A local stand-in for AWS IoT Core: registry, control plane, MQTT broker, device shadow.
