//! The node's append-only NDJSON event log: locked appends, crash recovery, segments, scans.
//!
//! The log is a sequence of files in one global byte-offset space: sealed,
//! immutable segments under `segments/` and the active `events.ndjson` (see
//! [`segments`]). Those files are the only source of truth. Beside them live
//! derived files that make every common operation O(new data) or O(log n):
//! `log_head.json` (length, counts, the node's last own seq), `log_ids.bin`
//! (ids of the active segment -> offset) and one sorted `.idx` per sealed
//! segment. All are rebuilt from the log whenever they disagree with it; the
//! log itself is fsynced before an append returns.
//!
//! One concern per module: `types` (error, head, recovery report), `handle`
//! (the [`EventLog`] and its paths), `read` (lock-free scans), `writer` (the
//! lock and the [`LogWriter`]'s lifecycle), `lookup` (ids to offsets),
//! `append`, `find` (lock-free positioning for readers that resume), `watch`
//! (waking on appends), `seal`, `quarantine` (cutting off a bad tail) and `recover`
//! (repairs when a writer opens the log).

mod append;
mod find;
mod handle;
mod index;
mod lookup;
mod quarantine;
mod read;
mod recover;
mod reverse;
mod scan;
mod seal;
pub mod segments;
pub mod sorted;
mod stream;
mod types;
pub mod watch;
mod writer;

#[cfg(test)]
pub(crate) mod testutil;

pub use handle::{EventLog, segment_bytes_from_env};
pub use index::{IdIndex, id_bytes as index_key};
pub use reverse::RevScan;
pub use scan::LogScan;
pub use segments::{DEFAULT_SEGMENT_BYTES, SEGMENT_BYTES_ENV};
pub use stream::StreamBatch;
pub use types::{LogError, LogHead, Recovery};
pub use writer::{LogWriter, Parked};
