//! Files a config names (error pages, TLS PEM files) are read only when they
//! are regular files within a size bound, so `check` refuses a device or a
//! huge file at once.
mod common;
use common::*;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a refused file may take `check`, and a stop may take.
const PROMPTLY: Duration = Duration::from_secs(5);

/// A config over one origin whose 503 error page is `file`.
fn with_error_page(file: &Path) -> String {
    config(
        &[("o", refused_addr())],
        "o",
        &format!(
            "\n[[error_response]]\nstatus = 503\nfile = {:?}\n",
            file.display().to_string()
        ),
    )
}

/// `check` on `text` fails quickly with one line naming `key` and saying `says`.
fn refused_quickly(text: &str, key: &str, says: &str) {
    let t0 = Instant::now();
    let line = one_error_with(text, &[], key);
    assert!(t0.elapsed() < PROMPTLY, "check took {:?}: {line}", t0.elapsed());
    assert!(line.contains(says), "expected {says:?} in: {line}");
}

/// A sparse file of 2 GiB in `dir` (no disk blocks).
fn huge_file(dir: &Path, name: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().set_len(2 << 30).unwrap();
    p
}

fn mkfifo(p: &Path) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", p.display());
}

#[test]
fn check_refuses_a_device_as_error_page_without_reading_it() {
    refused_quickly(
        &with_error_page(Path::new("/dev/zero")),
        "error_response[0].file",
        "is not a regular file",
    );
}

#[test]
fn check_refuses_a_huge_error_page_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let big = huge_file(dir.path(), "big.html");
    refused_quickly(&with_error_page(&big), "error_response[0].file", "is larger than 1MiB");
}

#[test]
fn check_refuses_a_fifo_or_a_directory_as_error_page() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("page.html");
    mkfifo(&fifo);
    refused_quickly(
        &with_error_page(&fifo),
        "error_response[0].file",
        "is not a regular file",
    );
    refused_quickly(
        &with_error_page(dir.path()),
        "error_response[0].file",
        "is not a regular file",
    );
}

#[test]
fn check_refuses_pem_files_that_are_devices_or_huge() {
    let dir = tempfile::tempdir().unwrap();
    let big = huge_file(dir.path(), "big.pem");
    let pki = pki::Pki::new("ringfront test CA");
    let leaf = pki.leaf(&["www.example.test"]);
    leaf.write(dir.path(), "leaf");
    let (cert, key) = (dir.path().join("leaf.pem"), dir.path().join("leaf.key"));
    let viewer = |cert: &Path, key: &Path| {
        config(&[("o", refused_addr())], "o", "").replace(
            "pin_workers = false\n",
            &format!(
                "pin_workers = false\n[server.tls]\nlisten = \"127.0.0.1:0\"\ncertificates = [ {{ names = [\"www.example.test\"], cert = {:?}, key = {:?} }} ]\n",
                cert.display().to_string(),
                key.display().to_string()
            ),
        )
    };
    let (code, _, err) = check_config(&viewer(&cert, &key), &[]);
    assert_eq!(code, 0, "the good pair must pass: {err}");
    let zero = Path::new("/dev/zero");
    refused_quickly(
        &viewer(zero, &key),
        "server.tls.certificates[0].cert",
        "is not a regular file",
    );
    refused_quickly(&viewer(&cert, &big), "server.tls.certificates[0].key", "is larger than");
    let origin = |ca: &Path| {
        config(&[("o", refused_addr())], "o", "").replace(
            "response_timeout = \"20s\"\n",
            &format!(
                "response_timeout = \"20s\"\nprotocol = \"https\"\nca_file = {:?}\n",
                ca.display().to_string()
            ),
        )
    };
    refused_quickly(&origin(zero), "origin[0].ca_file", "is not a regular file");
    refused_quickly(&origin(&big), "origin[0].ca_file", "is larger than");
}
