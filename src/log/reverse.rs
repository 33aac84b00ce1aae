//! Reading the log backwards: finding the last complete line, and newest-first scans.

use super::LogError;
use crate::event::Envelope;
use crate::fsutil::IoContext;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const CHUNK: u64 = 256 * 1024;

/// Offset just after the last `\n` at or before `len` (0 when there is none).
pub fn last_line_end(path: &Path, len: u64) -> Result<u64, LogError> {
    let mut f = File::open(path).ctx("open", path)?;
    let mut end = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let n = (end - start) as usize;
        f.seek(SeekFrom::Start(start)).ctx("seek", path)?;
        f.read_exact(&mut buf[..n]).ctx("read", path)?;
        if let Some(pos) = buf[..n].iter().rposition(|b| *b == b'\n') {
            return Ok(start + pos as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Newest-first iterator over `(offset, event)` pairs, ending at the start of the log.
pub struct RevScan {
    file: Option<File>,
    path: PathBuf,
    /// Bytes before `pos` are not read yet.
    pos: u64,
    /// Complete lines read but not yet returned, newest last.
    lines: Vec<(u64, Vec<u8>)>,
    /// A partial line at the front of the last chunk, waiting for its start.
    carry: Vec<u8>,
}

impl RevScan {
    pub(super) fn open(path: &Path, to: u64) -> Result<RevScan, LogError> {
        let file = match File::open(path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Err::<(), _>(e).ctx("open", path).unwrap_err().into()),
        };
        Ok(RevScan {
            file,
            path: path.to_path_buf(),
            pos: to,
            lines: Vec::new(),
            carry: Vec::new(),
        })
    }

    fn fill(&mut self) -> Result<bool, LogError> {
        let Some(f) = self.file.as_mut() else {
            return Ok(false);
        };
        while self.lines.is_empty() {
            if self.pos == 0 {
                if self.carry.is_empty() {
                    return Ok(false);
                }
                let line = std::mem::take(&mut self.carry);
                self.lines.push((0, line));
                break;
            }
            let start = self.pos.saturating_sub(CHUNK);
            let n = (self.pos - start) as usize;
            let mut chunk = vec![0u8; n];
            f.seek(SeekFrom::Start(start)).ctx("seek", &self.path)?;
            f.read_exact(&mut chunk).ctx("read", &self.path)?;
            chunk.extend_from_slice(&self.carry);
            // chunk now holds bytes [start, old_pos + carry); split on newlines.
            let mut pieces: Vec<&[u8]> = chunk.split(|b| *b == b'\n').collect();
            // The data always ends with '\n', so the final piece is empty or the carry's tail.
            if pieces.last().is_some_and(|p| p.is_empty()) {
                pieces.pop();
            }
            let first = if start == 0 {
                None
            } else {
                Some(pieces.remove(0).to_vec())
            };
            let mut off = start + first.as_ref().map_or(0, |f| f.len() as u64 + 1);
            for p in pieces {
                self.lines.push((off, p.to_vec()));
                off += p.len() as u64 + 1;
            }
            self.carry = first.unwrap_or_default();
            self.pos = start;
        }
        Ok(true)
    }
}

impl Iterator for RevScan {
    type Item = Result<(u64, Result<Envelope, crate::event::EventError>), LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.fill() {
            Ok(true) => {
                let (off, line) = self.lines.pop()?;
                Some(Ok((off, Envelope::from_json_line(&line))))
            }
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }
}
