//! Reading the files a config names (error pages, TLS PEM files).
//!
//! Only regular files are read, and only up to a bound: a FIFO would block
//! the reading thread until someone writes to it, a device such as
//! `/dev/zero` never ends, and a huge file would be read into memory whole.
//! The path is looked at before it is opened (so a device is never opened),
//! opened with `O_NONBLOCK` (so a FIFO swapped in meanwhile cannot block the
//! open) and looked at again through the open descriptor, which is what is
//! then read, never more than the bound.

use super::Size;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest custom error page (`[[error_response]] file`): pages are kept
/// in memory by every config generation, and an error page is small.
pub const MAX_ERROR_PAGE: u64 = 1 << 20;

/// The largest PEM file (`server.tls.certificates` cert and key, an origin's
/// `ca_file`): a full public root bundle is about 200 KiB.
pub const MAX_PEM_FILE: u64 = 4 << 20;

/// Why `meta` is not a file to read, if it is not: what it is instead, or
/// that it is larger than `max`.
fn refusal(path: &Path, meta: &Metadata, max: u64) -> Option<String> {
    let t = meta.file_type();
    let what = if t.is_file() {
        return (meta.len() > max)
            .then(|| format!("{} is larger than {} ({} bytes)", path.display(), Size(max), meta.len()));
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    };
    Some(format!("{} is not a regular file ({what})", path.display()))
}

fn cannot(path: &Path, e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("file {} not found", path.display()),
        _ => format!("cannot read {}: {e}", path.display()),
    }
}

/// Checks, without opening it, that `path` is a regular file of at most
/// `max` bytes; the error says what is wrong (for a config error line).
pub fn check_file(path: &Path, max: u64) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| cannot(path, e))?;
    refusal(path, &meta, max).map_or(Ok(()), Err)
}

/// Reads `path` whole if it is a regular file of at most `max` bytes (see
/// the module doc); the error says what is wrong (for a config error line).
pub fn read_file(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    check_file(path, max)?;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| cannot(path, e))?;
    let meta = f.metadata().map_err(|e| cannot(path, e))?;
    if let Some(why) = refusal(path, &meta, max) {
        return Err(why);
    }
    read_bounded(f, meta.len(), path, max)
}

/// Reads an opened regular file of `len` bytes (as it was looked at); a file
/// that grew past `max` since is refused rather than read on.
fn read_bounded(f: File, len: u64, path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let mut body = Vec::with_capacity(len.min(max) as usize);
    f.take(max + 1).read_to_end(&mut body).map_err(|e| cannot(path, e))?;
    if body.len() as u64 > max {
        return Err(format!("{} is larger than {}", path.display(), Size(max)));
    }
    Ok(body)
}

/// The largest config file.
pub const MAX_CONFIG_FILE: u64 = 16 << 20;

/// Reads the config file itself, up to [`MAX_CONFIG_FILE`]. Unlike the files
/// it names, it may be a pipe (`--config <(generate)`): its open and read
/// may then wait for the writer, which is why a reload runs on a thread of
/// its own (see `crate::reload`).
pub fn read_config_text(path: &Path) -> Result<String, String> {
    let f = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut text = String::new();
    f.take(MAX_CONFIG_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.len() as u64 > MAX_CONFIG_FILE {
        return Err(format!("{} is larger than {}", path.display(), Size(MAX_CONFIG_FILE)));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.html");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read_file(&p, 5).unwrap(), b"hello");
        let e = read_file(&p, 4).unwrap_err();
        assert!(e.contains("is larger than 4B"), "{e}");
    }

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        for (p, what) in [
            (dir.path(), "a directory"),
            (Path::new("/dev/zero"), "a device"),
            (Path::new("/dev/null"), "a device"),
        ] {
            let e = read_file(p, 1 << 20).unwrap_err();
            assert!(e.contains("is not a regular file") && e.contains(what), "{e}");
        }
        let e = read_file(&dir.path().join("missing"), 1).unwrap_err();
        assert!(e.contains("not found"), "{e}");
    }
}
