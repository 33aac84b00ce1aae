//! Reading one outbox file: size and encoding checks, then every line checked into an item.

use super::pinning::KeyState;
use super::run::Run;
use crate::event::Envelope;
use crate::git::RepoContext;
use crate::ledger::Result;
use crate::ledger::quarantine::Reason;
use crate::ledger::trust::HeldReason;
use crate::ledger::verify::{self, LineResult, Shape};
use crate::log::LogWriter;
use git2::Oid;

/// One checked item of a file: its line (None for a whole one-event file), bytes and outcome.
pub(super) type Item<'a> = (
    Option<usize>,
    &'a [u8],
    std::result::Result<Envelope, (Reason, String)>,
);

impl Run<'_> {
    /// Reads and applies one outbox file (size and encoding checked first).
    /// `first_sight` is false when a held file is read again: its bad lines were reported already.
    pub(super) fn file(
        &mut self,
        writer: &mut LogWriter<'_>,
        full: &str,
        shape: &Shape,
        oid: Oid,
        source: &str,
        first_sight: bool,
    ) -> Result<()> {
        let node = match shape {
            Shape::Batch { node } | Shape::Single { node, .. } => node.clone(),
            Shape::Bad(..) => return Ok(()),
        };
        if let Some(why) = self.unauthorized_reason(&node) {
            if first_sight {
                tracing::warn!(file = full, reason = %why, "ledger file held: not allowed by the mesh roster");
            }
            self.unauthorized.insert(why);
            self.hold(full, &node, 0, HeldReason::NotOnRoster);
            return Ok(());
        }
        if matches!(self.keys.get(&node), Some(KeyState::Untrusted)) {
            self.hold(full, &node, 0, HeldReason::UntrustedKey);
            return Ok(());
        }
        let repo = self.repo;
        let g = self.node.paths.ledger_repo();
        let odb = repo.odb().in_repo(&g)?;
        let (size, _) = odb.read_header(oid).in_repo(&g)?;
        if size as u64 > self.limits.max_file_bytes {
            let bytes = self.head_bytes(oid);
            let detail = format!("{size} bytes; the cap is {}", self.limits.max_file_bytes);
            let id = oid.to_string();
            return self.reject(
                &node,
                full,
                &id,
                &bytes,
                Reason::FileTooLarge,
                &detail,
                source,
            );
        }
        let blob = repo.find_blob(oid).in_repo(&g)?;
        let content = blob.content();
        if let Err(e) = std::str::from_utf8(content) {
            let detail = format!("invalid UTF-8 at byte {}", e.valid_up_to());
            let id = oid.to_string();
            return self.reject(&node, full, &id, content, Reason::NotUtf8, &detail, source);
        }
        let items: Vec<Item<'_>> = match shape {
            Shape::Batch { node } => verify::check_batch(node, content, &self.limits)
                .into_iter()
                .map(|r| match r {
                    LineResult::Event(env) => (None, &b""[..], Ok(*env)),
                    LineResult::Rejected {
                        line,
                        bytes,
                        reason,
                        detail,
                    } => (Some(line), bytes, Err((reason, detail))),
                })
                .collect(),
            Shape::Single { node, event_id } => vec![(
                None,
                content,
                verify::check_single(node, event_id, content, &self.limits),
            )],
            Shape::Bad(..) => Vec::new(),
        };
        self.apply(
            writer,
            full,
            &node,
            oid,
            content,
            items,
            source,
            first_sight,
        )
    }
}
