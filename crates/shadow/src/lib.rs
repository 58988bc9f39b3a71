//! AWS IoT Device Shadow documents: update merging, deltas, metadata, versions
//! and error codes (pure, no I/O, no clock: `now` is passed in as epoch seconds).
//!
//! The local core stores one [`StoredShadow`] per (thing, shadow name) and calls
//! these functions for both transports: MQTT (`$aws/things/{thing}/shadow/...`)
//! and HTTP (iot-data GetThingShadow / UpdateThingShadow / DeleteThingShadow).
//!
//! Parts:
//! - [`document`]: [`StoredShadow`], [`update`], [`get`], [`delete`] and their
//!   outcomes (the `/accepted`, `/delta` and `/documents` payloads).
//! - [`delta`](mod@delta): the [`delta()`] of `desired` against `reported`.
//! - [`error`]: [`ShadowError`] with AWS's codes and messages, and the
//!   `/rejected` payload.
//! - [`rate`]: the per-thing request rate (20 a second), as a token bucket.
//! - [`topic`]: request-topic parsing, response topics, thing/shadow name rules.
//!
//! Sources, cited in the tests: the AWS IoT Developer Guide pages "Device
//! Shadow service documents", "Interacting with shadows", "Device Shadow MQTT
//! topics", "Device Shadow REST API", "Device Shadow error messages" and
//! "Diagnosing problems with shadows".

pub mod delta;
pub mod document;
pub mod error;
pub mod rate;
pub mod topic;

pub use delta::{delta, delta_metadata, json_eq};
pub use document::{
    delete, get, update, DeleteOutcome, Map, Rejection, StoredShadow, UpdateOutcome,
    DELETED_VERSION_RETENTION_SECS, MAX_CLIENT_TOKEN_BYTES, MAX_STATE_BYTES, MAX_STATE_DEPTH,
};
pub use error::ShadowError;
pub use rate::{RateLimiter, REQUESTS_PER_SECOND_PER_THING};
pub use topic::{
    parse_request_topic, request_topic, response_topic, topic_prefix, valid_shadow_name,
    valid_thing_name, ShadowOp, ShadowTopic,
};
