//! Setting aside an incomplete tail of the active file: copied to quarantine, then cut off.

use super::{LogError, LogWriter};
use crate::fsutil::{IoContext, write_atomic};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};

impl LogWriter<'_> {
    /// Moves global bytes `from..to` of the active file to quarantine and truncates it at `from`.
    pub(super) fn quarantine_tail(
        &mut self,
        from: u64,
        to: u64,
        reason: &str,
    ) -> Result<u64, LogError> {
        let base = self.view.active_base;
        let q = &self.log.quarantine;
        fs::create_dir_all(q).ctx("create directory", q)?;
        let mut bytes = Vec::new();
        let mut f = File::open(&self.log.log).ctx("open", &self.log.log)?;
        f.seek(SeekFrom::Start(from - base))
            .ctx("seek", &self.log.log)?;
        f.take(to - from)
            .read_to_end(&mut bytes)
            .ctx("read", &self.log.log)?;
        let name = format!("log-{reason}-{from}-{}.ndjson", std::process::id());
        write_atomic(&q.join(&name), &bytes, true)?;
        let reason_file = q.join(format!("{name}.reason"));
        let text = format!(
            "{reason}: bytes {from}..{to} of the log ({} from byte {}) were not a complete append\n",
            self.log.log.display(),
            from - base
        );
        write_atomic(&reason_file, text.as_bytes(), true)?;
        self.file
            .set_len(from - base)
            .ctx("truncate", &self.log.log)?;
        self.file.sync_all().ctx("fsync", &self.log.log)?;
        tracing::warn!(log = %self.log.log.display(), from, to, reason, quarantined = %name, "repaired event log");
        Ok(to - from)
    }
}
