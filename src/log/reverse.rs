//! Reading the log backwards: finding the last complete line, and newest-first scans.

use super::LogError;
use super::scan::Piece;
use crate::event::Envelope;
use crate::fsutil::IoContext;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

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
///
/// It walks the active file and then the sealed segments, newest first; lines
/// never cross a segment boundary because segments are sealed between appends.
pub struct RevScan {
    /// Pieces not started yet, oldest first (the next one is popped from the end).
    pieces: Vec<Piece>,
    /// The piece being read and its open file.
    current: Option<(Piece, File)>,
    /// Local bytes of the current piece before `pos` are not read yet.
    pos: u64,
    /// Complete lines read but not yet returned (global offsets), newest last.
    lines: Vec<(u64, Vec<u8>)>,
    /// A partial line at the front of the last chunk, waiting for its start.
    carry: Vec<u8>,
}

impl RevScan {
    pub(super) fn new(pieces: Vec<Piece>) -> RevScan {
        RevScan {
            pieces,
            current: None,
            pos: 0,
            lines: Vec::new(),
            carry: Vec::new(),
        }
    }

    fn fill(&mut self) -> Result<bool, LogError> {
        while self.lines.is_empty() {
            let Some((piece, f)) = self.current.as_mut() else {
                let Some(mut p) = self.pieces.pop() else {
                    return Ok(false);
                };
                let f = p.open()?;
                let len = f.metadata().ctx("stat", &p.path)?.len();
                self.pos = p.end.min(len);
                self.carry.clear();
                self.current = Some((p, f));
                continue;
            };
            if self.pos == piece.start {
                if !self.carry.is_empty() {
                    let line = std::mem::take(&mut self.carry);
                    self.lines.push((piece.base + piece.start, line));
                }
                self.current = None;
                continue;
            }
            let start = self.pos.saturating_sub(CHUNK).max(piece.start);
            let n = (self.pos - start) as usize;
            let mut chunk = vec![0u8; n];
            f.seek(SeekFrom::Start(start)).ctx("seek", &piece.path)?;
            f.read_exact(&mut chunk).ctx("read", &piece.path)?;
            chunk.extend_from_slice(&self.carry);
            // chunk now holds bytes [start, old_pos + carry); split on newlines.
            let mut pieces: Vec<&[u8]> = chunk.split(|b| *b == b'\n').collect();
            // The data always ends with '\n', so the final piece is empty or the carry's tail.
            if pieces.last().is_some_and(|p| p.is_empty()) {
                pieces.pop();
            }
            let first = if start == piece.start {
                None
            } else {
                Some(pieces.remove(0).to_vec())
            };
            let mut off = start + first.as_ref().map_or(0, |f| f.len() as u64 + 1);
            for p in pieces {
                self.lines.push((piece.base + off, p.to_vec()));
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
