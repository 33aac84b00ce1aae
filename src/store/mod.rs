//! The node's clone of the shared repository: where each file lives in it, which ref
//! holds which view, creating it and reading files from it. Below the ledger so that
//! the schema registry and status can read the ledger without depending on import.

pub mod layout;
pub mod repo;
