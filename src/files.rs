//! Reading the text files linkrun is handed (scripts, service definitions, script input), and
//! standard input, with a size cap.
//!
//! Only regular files are read: a FIFO would block, a character device like `/dev/zero` never
//! ends, and a directory has no text. The size is checked on the open file, and the read itself is
//! bounded (`take(cap + 1)`), so a file that grows while it is read cannot take more memory either.

use std::io::Read as _;
use std::path::Path;

/// Why a capped text file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The path is a directory, FIFO, socket or device.
    #[error("`{path}` is {what}, not a regular file: give the path of a regular file")]
    NotRegular {
        /// The path as given.
        path: String,
        /// What it is instead (`a directory`, `a FIFO`, `a device`, ...).
        what: &'static str,
    },
    /// The file is larger than the cap.
    #[error("`{path}` is larger than {cap}: split it or make it smaller")]
    TooLarge {
        /// The path as given.
        path: String,
        /// The cap, written for people (`1 MiB`).
        cap: String,
    },
    /// The file is not UTF-8 text.
    #[error("`{path}` is not UTF-8 text: save it as UTF-8")]
    NotText {
        /// The path as given.
        path: String,
    },
    /// Opening or reading failed.
    #[error("cannot read `{path}`: {reason}; check the path")]
    Io {
        /// The path as given.
        path: String,
        /// The reason, in words (`no such file`, `permission denied`, ...).
        reason: String,
    },
}

/// Reads the regular file at `path` as UTF-8 text of at most `cap` bytes.
pub fn read_text_capped(path: &Path, cap: u64) -> Result<String, ReadError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| ReadError::Io { path: shown.clone(), reason: io_reason(&e) };
    // Looked at before opening: opening a FIFO for reading blocks until a writer comes.
    let meta = std::fs::metadata(path).map_err(io)?;
    check_kind(&meta, &shown)?;
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check_kind(&meta, &shown)?;
    if meta.len() > cap {
        return Err(ReadError::TooLarge { path: shown, cap: size_text(cap) });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge { path: shown, cap: size_text(cap) });
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotText { path: shown })
}

/// Reads standard input as UTF-8 text of at most `cap` bytes; `shown` names it in errors
/// (`<stdin>`). The read is bounded like a file's.
pub fn read_stdin_capped(shown: &str, cap: u64) -> Result<String, ReadError> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Io { path: shown.to_string(), reason: io_reason(&e) })?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge { path: shown.to_string(), cap: size_text(cap) });
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotText { path: shown.to_string() })
}

fn check_kind(meta: &std::fs::Metadata, shown: &str) -> Result<(), ReadError> {
    if meta.is_file() {
        return Ok(());
    }
    let t = meta.file_type();
    let what = if t.is_dir() { "a directory" } else { kind_of_special(&t) };
    Err(ReadError::NotRegular { path: shown.to_string(), what })
}

#[cfg(unix)]
fn kind_of_special(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn kind_of_special(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// A byte count as people write it: `4 MiB`, `1 KiB`, `100 bytes`.
pub fn size_text(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// An I/O error's reason in words.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// Writes `text` to `path` whole or not at all: a temporary file in the same folder, renamed over
/// `path` once written and flushed (a reader never sees half a file; a failure leaves `path` as
/// it was).
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_small_files_and_refuses_large_ones_and_non_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, "hello").unwrap();
        assert_eq!(read_text_capped(&p, 5).unwrap(), "hello");
        let e = read_text_capped(&p, 4).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { .. }), "{e}");
        assert!(e.to_string().ends_with("is larger than 4 bytes: split it or make it smaller"), "{e}");
        let e = read_text_capped(dir.path(), 5).unwrap_err();
        assert!(e.to_string().contains("is a directory, not a regular file"), "{e}");
        let e = read_text_capped(Path::new("/dev/zero"), 5).unwrap_err();
        assert!(e.to_string().contains("is a device, not a regular file"), "{e}");
        let e = read_text_capped(&dir.path().join("missing"), 5).unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert!(matches!(read_text_capped(&p, 5).unwrap_err(), ReadError::NotText { .. }));
        assert_eq!(size_text(4 * 1024 * 1024), "4 MiB");
        assert_eq!(size_text(1024), "1 KiB");
    }
}
