//! Small file-system primitives: atomic replace, directory fsync, JSON state files, JSON lines.

use serde::{Serialize, de::DeserializeOwned};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An I/O failure with the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct PathError {
    /// What was being done (`read`, `write`, `rename`, ...).
    pub op: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

/// Attaches an operation and a path to an I/O result.
pub trait IoContext<T> {
    /// Wraps the error with `op` and `path`.
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, PathError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T, PathError> {
        self.map_err(|source| PathError {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}

/// fsyncs a directory so a rename or create inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), PathError> {
    File::open(dir).and_then(|d| d.sync_all()).ctx("fsync", dir)
}

/// Replaces `path` with `bytes` atomically: temp file, optional fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<(), PathError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).ctx("create directory", dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .ctx("create", &tmp)?;
        f.write_all(bytes).ctx("write", &tmp)?;
        if durable {
            f.sync_all().ctx("fsync", &tmp)?;
        }
        fs::rename(&tmp, path).ctx("rename", path)
    })();
    if written.is_err() {
        // A half-written temporary file (a full disk) must not take space meanwhile.
        let _ = fs::remove_file(&tmp);
    }
    written?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Writes a value as pretty JSON, atomically and durably.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), PathError> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(io::Error::other)
        .ctx("serialize", path)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes, true)
}

/// Serializes a value as compact JSON; a failure names `path`, the file the bytes are for.
pub fn json_bytes<T: Serialize>(value: &T, path: &Path) -> Result<Vec<u8>, PathError> {
    serde_json::to_vec(value)
        .map_err(io::Error::other)
        .ctx("serialize", path)
}

/// Adds a value to `buf` as one JSON line (compact JSON and `\n`), for a file at `path`.
pub fn push_json_line<T: Serialize>(
    buf: &mut Vec<u8>,
    value: &T,
    path: &Path,
) -> Result<(), PathError> {
    serde_json::to_writer(&mut *buf, value)
        .map_err(io::Error::other)
        .ctx("serialize", path)?;
    buf.push(b'\n');
    Ok(())
}

/// Appends a value as one JSON line to `path` (created with its directory), fsynced.
///
/// The line is serialized before the file is touched, so a value that cannot
/// be serialized leaves no empty or partial line behind.
pub fn append_json_line<T: Serialize>(path: &Path, value: &T) -> Result<(), PathError> {
    let mut line = Vec::new();
    push_json_line(&mut line, value, path)?;
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).ctx("create directory", dir)?;
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ctx("open", path)?;
    f.write_all(&line).ctx("append", path)?;
    f.sync_data().ctx("fsync", path)
}

/// Reads a JSON state file; `Ok(None)` when it does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, PathError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
            .ctx("parse", path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx("read", path),
    }
}

/// Lists a directory; `Ok(None)` when it does not exist (nothing written there yet).
pub fn read_dir_opt(dir: &Path) -> Result<Option<fs::ReadDir>, PathError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(Some(entries)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx("read directory", dir),
    }
}

/// Opens (creating it and its directory) a file used only for `flock`; never truncates it.
pub fn open_lock_file(path: &Path) -> Result<File, PathError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).ctx("create directory", dir)?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .ctx("open", path)
}

/// Space on the file system holding a path (`statvfs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DiskSpace {
    /// Bytes an unprivileged process can still write.
    pub free_bytes: u64,
    /// Size of the file system in bytes.
    pub total_bytes: u64,
}

/// Free and total space of the file system holding `path`; reads only.
pub fn disk_space(path: &Path) -> Result<DiskSpace, PathError> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(io::Error::other)
        .ctx("statvfs", path)?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` points to writable memory of the
    // right type; statvfs fills it completely when it returns 0.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error()).ctx("statvfs", path);
    }
    // SAFETY: statvfs returned 0, so the struct is initialised.
    let st = unsafe { st.assume_init() };
    // The field types differ between platforms (u32 or u64).
    #[allow(clippy::unnecessary_cast)]
    let frsize = st.f_frsize as u64;
    #[allow(clippy::unnecessary_cast)]
    Ok(DiskSpace {
        free_bytes: (st.f_bavail as u64).saturating_mul(frsize),
        total_bytes: (st.f_blocks as u64).saturating_mul(frsize),
    })
}

#[cfg(test)]
mod tests;
