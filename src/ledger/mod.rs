//! The ledger: the shared repository's layout, node manifests, batches and the lease.

pub mod clock;
pub mod compact;
pub mod export;
pub mod import;
pub mod lease;
pub mod lock;
pub mod manifest;
pub mod quarantine;
pub mod recover;
pub mod refs;
pub mod roster;
pub mod rotations;
pub mod schema_trust;
pub mod seqs;
pub mod state;
pub mod trust;
pub mod verify;

pub use manifest::Manifest;

use crate::git::GitError;
use std::path::PathBuf;

/// Errors of ledger operations.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A git operation failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// A file of the ledger is not what it should be.
    #[error("ledger file {path}: {reason}")]
    BadFile {
        /// Path in the ledger.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A local file operation failed.
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    /// Another sync holds the node's sync lock.
    #[error("another sync is running on this node (lock {path}); try again when it finishes")]
    Busy {
        /// The lock file.
        path: PathBuf,
    },
    /// The ledger shows more own events than the local log holds (a root restored from an old copy).
    #[error(
        "the ledger already holds events of {node} through seq {ledger_seq} but the local log ends at seq {local_seq}: this node root was restored from an older copy; recover its events before exporting, or the node would reuse seqs"
    )]
    StaleNode {
        /// This node.
        node: String,
        /// The highest own seq the ledger holds.
        ledger_seq: u64,
        /// The highest own seq the local log holds.
        local_seq: u64,
    },
    /// Own events in the log skip a seq.
    #[error("own events of {node} skip from seq {expected} to {found} in the log; export stopped")]
    SeqGap {
        /// This node.
        node: String,
        /// The seq that should come next.
        expected: u64,
        /// The seq found instead.
        found: u64,
    },
    /// The node's signing key could not be loaded or used.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// Own events in the ledger conflict with own events of the local log.
    #[error(
        "own event seq {seq} differs between the ledger ({ledger_id}) and the local log ({local_id}): \
this node root was restored from an older copy and then appended new own events before it could \
recover; export stopped so that no seq is published twice (see docs/ledger.md, \"Stale backups\")"
    )]
    OwnFork {
        /// The seq both hold.
        seq: u64,
        /// The event id the ledger holds at it.
        ledger_id: String,
        /// The event id the local log holds at it.
        local_id: String,
    },
    /// The node root looks copied or restored and the remote could not be reached to recover its events.
    #[error(
        "this node root was copied or restored ({detail}); its own events must be recovered from the ledger \
before it appends new ones, and the remote is unreachable: {source}"
    )]
    RestoredOffline {
        /// What changed about the root.
        detail: String,
        /// Why the remote could not be reached.
        source: GitError,
    },
    /// The ledger holds this node's events under another key than the node root has:
    /// the root lost its key. Nothing is appended or exported until the key is back.
    #[error(
        "the ledger holds node {node}'s events through seq {ledger_seq} under key {ledger_key}, but this \
node root's key is {local_key}: the node's signing key was lost with its root. Restore the key \
(GITMESH_SIGNING_KEY, [identity] key_file, or state/event_mesh/keys/node.ed25519 from a backup) and run \
`gitmesh mesh-init` again; or start this machine as a new node (another --node-id); or, if the \
key is lost for good, `gitmesh mesh-init --replace-lost-key` (peers then hold the node's new events \
until an operator runs `gitmesh nodes trust`). Until then nothing is appended to this root"
    )]
    ForeignKey {
        /// This node.
        node: String,
        /// The highest own seq the ledger holds.
        ledger_seq: u64,
        /// The public key the ledger's manifest holds for this node.
        ledger_key: String,
        /// The public key of this root's signing key.
        local_key: String,
    },
    /// The local event log failed.
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    /// The node could not load what it needs (schemas, configuration).
    #[error(transparent)]
    Node(#[from] crate::node::NodeError),
    /// The remote kept rejecting pushes after every retry.
    #[error("push rejected {attempts} times: other nodes keep pushing; the next sync will retry")]
    Contended {
        /// Push attempts made.
        attempts: u32,
    },
}

impl LedgerError {
    /// Stable kind for `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            LedgerError::Git(e) => e.remote_failure().map_or("git", |f| f.kind()),
            LedgerError::BadFile { .. } => "ledger",
            LedgerError::Io(_) => "io",
            LedgerError::Busy { .. } => "busy",
            LedgerError::Contended { .. } => "contended",
            LedgerError::StaleNode { .. } => "stale_node",
            LedgerError::SeqGap { .. } => "seq_gap",
            LedgerError::Key(_) => "key",
            LedgerError::OwnFork { .. } => "own_fork",
            LedgerError::ForeignKey { .. } => "foreign_key",
            LedgerError::RestoredOffline { .. } => "stale_node",
            LedgerError::Log(_) => "log",
            LedgerError::Node(e) => e.kind(),
        }
    }

    /// Whether the remote could not be reached (exit code 75).
    pub fn is_offline(&self) -> bool {
        matches!(self, LedgerError::Git(e) if e.is_unreachable())
    }
}

/// Result of ledger operations.
pub type Result<T, E = LedgerError> = std::result::Result<T, E>;
