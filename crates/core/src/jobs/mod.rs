//! AWS IoT Jobs: the control-plane operations (jobs, executions, job
//! documents, templates), the device API over MQTT, and the download route
//! for staged files that over-the-air agent updates use.
//!
//! - [`state`]: the rules as pure functions (moves, next execution, topics).
//! - [`store`]: the jobs tables in `core.db`.
//! - [`api`]: the REST-JSON routes, as botocore's `iot` model defines them.
//! - [`device`]: `$aws/things/{thing}/jobs/...` over the broker.
//! - [`files`]: `GET /files/{token}`, read-only, outside SigV4.
//! - [`staged`]: removes staged files once no job needs them.

pub mod api;
pub mod device;
pub mod files;
pub mod staged;
pub mod state;
pub mod store;

pub use api::router;
