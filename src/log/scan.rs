//! Forward scans over a global offset range that may cross segment boundaries.

use super::LogError;
use super::segments::{Layout, View};
use crate::event::Envelope;
use crate::fsutil::IoContext;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

/// One file's share of a scan: local byte range `start..end` of a file whose first byte is global `base`.
#[derive(Debug)]
pub(super) struct Piece {
    /// The segment or active file.
    pub path: PathBuf,
    /// Already open (the active file, opened when the view was taken), else opened when reached.
    pub file: Option<File>,
    /// Global offset of the file's first byte.
    pub base: u64,
    /// First local byte to read.
    pub start: u64,
    /// Local byte to stop before.
    pub end: u64,
}

impl Piece {
    /// The open file: the one held, else opened by path (sealed segments never change).
    pub fn open(&mut self) -> Result<File, LogError> {
        match self.file.take() {
            Some(f) => Ok(f),
            None => Ok(File::open(&self.path).ctx("open", &self.path)?),
        }
    }
}

/// The pieces of the global range `from..to`, oldest first.
pub(super) fn pieces(
    layout: &Layout,
    view: &View,
    active: Option<File>,
    from: u64,
    to: u64,
) -> Vec<Piece> {
    let mut out = Vec::new();
    if from >= to {
        return out;
    }
    let first = view.locate(from).unwrap_or(view.sealed.len());
    for e in &view.sealed[first..] {
        if e.base >= to {
            break;
        }
        let start = from.saturating_sub(e.base);
        let end = to.min(e.base + e.bytes) - e.base;
        if start < end {
            out.push(Piece {
                path: layout.segment(e.number),
                file: None,
                base: e.base,
                start,
                end,
            });
        }
    }
    if to > view.active_base
        && let Some(f) = active
    {
        out.push(Piece {
            path: layout.active.clone(),
            file: Some(f),
            base: view.active_base,
            start: from.saturating_sub(view.active_base),
            end: to - view.active_base,
        });
    }
    out
}

/// Forward iterator over `(offset, event)` pairs of a log range; offsets are global.
pub struct LogScan {
    pieces: VecDeque<Piece>,
    reader: Option<BufReader<std::io::Take<File>>>,
    offset: u64,
    buf: Vec<u8>,
    path: PathBuf,
}

impl LogScan {
    pub(super) fn new(pieces: Vec<Piece>, from: u64, path: PathBuf) -> LogScan {
        LogScan {
            pieces: pieces.into(),
            reader: None,
            offset: from,
            buf: Vec::with_capacity(1024),
            path,
        }
    }

    /// Byte offset just after the last line returned.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn advance(&mut self) -> Result<bool, LogError> {
        let Some(mut p) = self.pieces.pop_front() else {
            return Ok(false);
        };
        let mut f = p.open()?;
        f.seek(SeekFrom::Start(p.start)).ctx("seek", &p.path)?;
        self.reader = Some(BufReader::with_capacity(1 << 20, f.take(p.end - p.start)));
        self.offset = p.base + p.start;
        self.path = p.path;
        Ok(true)
    }

    /// The next raw line (without its newline) and its offset; incomplete lines end the scan.
    pub fn next_raw(&mut self) -> Result<Option<(u64, &[u8])>, LogError> {
        loop {
            if self.reader.is_none() && !self.advance()? {
                return Ok(None);
            }
            let Some(reader) = self.reader.as_mut() else {
                return Ok(None);
            };
            self.buf.clear();
            let n = reader
                .read_until(b'\n', &mut self.buf)
                .ctx("read", &self.path)?;
            if n == 0 {
                self.reader = None;
                continue;
            }
            if self.buf.last() != Some(&b'\n') {
                self.reader = None;
                self.pieces.clear();
                return Ok(None);
            }
            let start = self.offset;
            self.offset += n as u64;
            return Ok(Some((start, &self.buf[..n - 1])));
        }
    }
}

impl Iterator for LogScan {
    type Item = Result<(u64, Result<Envelope, crate::event::EventError>), LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_raw() {
            Ok(Some((offset, line))) => Some(Ok((offset, Envelope::from_json_line(line)))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}
