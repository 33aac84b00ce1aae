//! `mesh-publish --stdin` in bounded memory: every line is checked into a spool
//! file first, then the batch is streamed into the log under its lock, all or nothing.

use super::{Draft, Node, NodeError, Result, correlation};
use crate::fsutil::IoContext;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Seek, Write};

/// Room for a draft's fields around its payload on one input line.
const LINE_OVERHEAD: usize = 64 * 1024;

/// What a streamed publish did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamPublished {
    /// Events appended.
    pub published: u64,
    /// Drafts whose keyed id the log (or the batch) already held.
    pub duplicates: u64,
}

/// Reads one line of at most `max` bytes (newline excluded) into `buf`;
/// `Ok(false)` at the end of the input.
fn read_line(input: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<bool> {
    buf.clear();
    let n = input.take(max as u64 + 1).read_until(b'\n', buf)?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    Ok(n > 0)
}

/// An anonymous file in `dir`: created under a fresh name and unlinked at once,
/// so it vanishes with the process whatever happens.
fn spool_file(dir: &std::path::Path) -> Result<std::fs::File> {
    let path = dir.join(format!(
        "publish_spool.{}.{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .ctx("create spool file", &path)?;
    std::fs::remove_file(&path).ctx("remove spool file", &path)?;
    Ok(f)
}

impl Node {
    /// Publishes NDJSON drafts read from `input` as one all-or-nothing batch, in
    /// memory bounded by one line (plus a few bytes per event for the id index).
    ///
    /// First every line is parsed and checked (schema, payload limits) and
    /// copied to a spool file next to the log, without the log's lock: a bad
    /// line fails the batch with its number and nothing is written. Then, under
    /// the lock, the spool is read again and each event is written as it is
    /// built; a failure cuts the written lines away (and a crash leaves a marker
    /// that makes the next opener roll them back).
    pub fn publish_stream(
        &self,
        input: &mut dyn BufRead,
        source: Option<&str>,
    ) -> Result<StreamPublished> {
        let dir = self.paths.state();
        std::fs::create_dir_all(&dir).ctx("create directory", &dir)?;
        let spool = spool_file(&dir)?;
        let mut out = std::io::BufWriter::new(spool);
        let max = self.config.limits.max_payload_bytes + LINE_OVERHEAD;
        let mut line = Vec::new();
        let mut number = 0usize;
        let mut count = 0u64;
        while read_line(input, &mut line, max)
            .map_err(|e| NodeError::Draft(format!("could not read standard input: {e}")))?
        {
            number += 1;
            let bad = |msg: String| NodeError::BatchLine {
                line: number,
                source: Box::new(NodeError::Draft(msg)),
            };
            if line.len() > max {
                return Err(bad(format!("longer than {max} bytes")));
            }
            let text = std::str::from_utf8(&line).map_err(|_| bad("not UTF-8".into()))?;
            let Some(mut d) = Draft::parse_line(text, number, source)? else {
                continue;
            };
            // The spool holds the stored form: the payload as checked and canonicalized.
            d.payload = self.check_draft(&d).map_err(|e| NodeError::BatchLine {
                line: number,
                source: Box::new(e),
            })?;
            serde_json::to_writer(&mut out, &d)
                .map_err(std::io::Error::other)
                .ctx("write spool file in", &dir)?;
            out.write_all(b"\n").ctx("write spool file in", &dir)?;
            count += 1;
        }
        if count == 0 {
            return Err(NodeError::Draft("no events in the input".into()));
        }
        let mut spool = out
            .into_inner()
            .map_err(|e| e.into_error())
            .ctx("write spool file in", &dir)?;
        spool.rewind().ctx("rewind spool file in", &dir)?;
        let mut w = self.log.writer()?;
        let mut batch = w.stream_begin();
        let r = self.append_spool(&mut w, &mut batch, BufReader::new(spool), &dir);
        match r {
            Ok(duplicates) => {
                let published = w.stream_commit(batch)? as u64;
                Ok(StreamPublished {
                    published,
                    duplicates,
                })
            }
            Err(e) => {
                w.stream_abort(batch);
                Err(e)
            }
        }
    }

    /// Builds each spooled draft's envelope and pushes it; returns the duplicates skipped.
    fn append_spool(
        &self,
        w: &mut crate::log::LogWriter<'_>,
        batch: &mut crate::log::StreamBatch,
        spool: impl BufRead,
        dir: &std::path::Path,
    ) -> Result<u64> {
        let now = chrono::Utc::now();
        let mut ts = crate::event::parse_timestamp(&w.next_own_timestamp(now)).unwrap_or(now);
        let mut keyed: HashSet<String> = HashSet::new();
        let mut duplicates = 0u64;
        for line in spool.lines() {
            let line = line.ctx("read spool file in", dir)?;
            let d: Draft = serde_json::from_str(&line)
                .map_err(|e| NodeError::Draft(format!("spool file line unreadable: {e}")))?;
            let mut env = self.draft_envelope(d, ts)?;
            if env.dedupe_key.is_some()
                && (!keyed.insert(env.event_id.clone()) || w.get(&env.event_id)?.is_some())
            {
                duplicates += 1;
                continue;
            }
            env.correlation_id = correlation(w, &env)?;
            env.seq = batch.next_seq();
            env.prev = batch.own_prev().to_string();
            w.stream_push(batch, &env)?;
            ts += chrono::Duration::microseconds(1);
        }
        Ok(duplicates)
    }
}
