//! The `ringfront` command: run, check, demo, and the sample origin.

use mimalloc::MiMalloc;
use ringfront::config::Config;
use ringfront::reload::{self, Reloads, Requested};
use std::path::PathBuf;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

const HELP: &str = "\
ringfront — HTTP/1.1 edge caching reverse proxy (io_uring, thread-per-core)

USAGE:
    ringfront run --config FILE      serve until SIGTERM/SIGINT, then drain and exit 0
    ringfront check --config FILE    validate FILE and print the resolved config (exit 2 on errors)
    ringfront demo                   two sample origins and the proxy on 127.0.0.1:8080
    ringfront sample-origin --listen ADDR [--name NAME] [--threads N]
                                     run the fault-injecting sample origin (loopback, 198.18.0.0/15)
    ringfront --version | --help

Logs go to stderr; RUST_LOG=debug for more.
";

fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .format_target(false)
        .init();
}

fn arg_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn load(args: &[String]) -> Result<std::sync::Arc<Config>, ExitCode> {
    let Some(path) = arg_value(args, "--config") else {
        eprintln!("error: --config FILE is required");
        return Err(ExitCode::from(2));
    };
    Config::load(&PathBuf::from(&path)).map_err(|errs| {
        for e in errs {
            eprintln!("{path}: {e}");
        }
        ExitCode::from(2)
    })
}

/// `ringfront run`: serves until SIGTERM/SIGINT; SIGHUP reloads the config
/// on the reload thread, so a slow reload never delays a stop.
fn run(args: &[String]) -> ExitCode {
    init_logging();
    let cfg = match load(args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    ringfront::signals::block_stop_signals();
    let running = match ringfront::runtime::start(cfg) {
        Ok(r) => r,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(1);
        }
    };
    let path = PathBuf::from(arg_value(args, "--config").unwrap_or_default());
    let reloader = running.reloader();
    let reload_path = path.clone();
    let reloads = match Reloads::start(move || reload::reload_file(&reload_path, &reloader)) {
        Ok(r) => r,
        Err(e) => {
            log::error!("cannot start the reload thread: {e}");
            running.stop();
            return ExitCode::from(1);
        }
    };
    let sig = loop {
        let sig = ringfront::signals::wait_signal();
        if sig != libc::SIGHUP {
            break sig;
        }
        match reloads.request() {
            Requested::Started => {}
            Requested::Queued | Requested::Folded => {
                log::info!(
                    "SIGHUP: a reload is still loading; {} is read again after it",
                    path.display()
                )
            }
            Requested::Gone => log::error!("SIGHUP: the reload thread is gone; restart to change the config"),
        }
    };
    if reloads.pending() {
        log::warn!("a reload of {} is still loading: stopping without it", path.display());
    }
    log::info!("signal {sig}: stopping, draining requests in flight");
    running.stop();
    log::info!("stopped");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") | Some("-V") => {
            println!("ringfront {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("--help") | Some("-h") | Some("help") | None => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Some("check") => match load(&args) {
            Ok(cfg) => {
                print!("{}", cfg.summary(ringfront::runtime::allowed_cpus().len()));
                println!("config ok");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Some("run") => run(&args),
        Some("demo") => {
            init_logging();
            match ringfront::demo::run("127.0.0.1:8080") {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    log::error!("{e}");
                    ExitCode::from(1)
                }
            }
        }
        Some("sample-origin") => {
            init_logging();
            let listen = arg_value(&args, "--listen").unwrap_or_else(|| "127.0.0.1:9001".into());
            let name = arg_value(&args, "--name").unwrap_or_else(|| "origin".into());
            let threads = arg_value(&args, "--threads").and_then(|t| t.parse().ok()).unwrap_or(1);
            ringfront::signals::block_stop_signals();
            match ringfront::sample_origin::SampleOrigin::start_threads(&listen, &name, threads) {
                Ok(o) => {
                    log::info!("sample origin {name:?} listening on http://{}", o.addr());
                    ringfront::signals::wait_signal();
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    log::error!("sample origin: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some(other) => {
            eprintln!("error: unknown command {other:?}\n\n{HELP}");
            ExitCode::from(2)
        }
    }
}
