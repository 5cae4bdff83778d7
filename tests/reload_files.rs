//! Files a config names (error pages, TLS PEM files) are read only when they
//! are regular files within a size bound, so `check` refuses a device or a
//! huge file at once; and a SIGHUP loads the config on a thread of its own,
//! so SIGTERM is handled promptly even while a reload is stuck loading.
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

/// Polls `cond` for up to `within`; false if it never held.
fn within(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while !cond() {
        if t0.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// A reload whose error page is a FIFO fails at once, naming the key (the
/// FIFO is never opened for a blocking read), and SIGTERM then stops the
/// proxy promptly.
#[test]
fn a_reload_naming_a_fifo_as_error_page_fails_and_sigterm_still_stops_promptly() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let mut p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    let fifo = p.config_path.with_file_name("page.html");
    mkfifo(&fifo);
    std::fs::write(&p.config_path, with_error_page(&fifo)).unwrap();
    p.hup();
    assert!(
        within(PROMPTLY, || p.log_text().contains("reload failed")),
        "the reload was not reported failed within {PROMPTLY:?} (blocked on the FIFO?); log:\n{}",
        p.log_text()
    );
    assert!(
        p.log_text().contains("error_response[0].file") && p.log_text().contains("is not a regular file"),
        "{}",
        p.log_text()
    );
    assert_eq!(p.client().get("/x").status, 200, "the running config is kept");
    assert!(p.terminate_within(PROMPTLY).success());
}

/// While a reload is stuck reading its config (here the config file became
/// a FIFO that nobody writes: the read blocks), SIGTERM still stops the
/// proxy promptly with status 0, and the log says the reload was left
/// unfinished. (The config file itself may be a pipe, as in `--config
/// <(generate)`, so its open is the one read that can block; it blocks the
/// reload thread only.)
#[test]
fn sigterm_stops_promptly_while_a_reload_is_blocked_loading() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let mut p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    let fifo = p.config_path.with_file_name("next.toml");
    mkfifo(&fifo);
    std::fs::rename(&fifo, &p.config_path).unwrap();
    p.hup();
    // The reload has the FIFO open for reading once a non-blocking open for
    // writing succeeds; holding the write end open (and writing nothing)
    // keeps its read blocked.
    let path = CString::new(p.config_path.as_os_str().as_bytes()).unwrap();
    let mut writer = -1;
    assert!(
        within(PROMPTLY, || {
            // SAFETY: path is a valid NUL-terminated path; the result is checked.
            writer = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC) };
            writer >= 0
        }),
        "the reload never opened its config; log:\n{}",
        p.log_text()
    );
    let t0 = Instant::now();
    assert!(p.terminate_within(PROMPTLY).success());
    assert!(t0.elapsed() < PROMPTLY);
    assert!(p.log_text().contains("still loading"), "{}", p.log_text());
    // SAFETY: writer is the descriptor opened above, closed once.
    unsafe { libc::close(writer) };
}
