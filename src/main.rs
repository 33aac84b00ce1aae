//! The `gitmesh` binary: parse flags, run the command, print, and map errors to exit codes.

mod cli;

use clap::Parser;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    // SAFETY: no thread has been started yet.
    unsafe { gitmesh::git::limit_mapped_packs() };
    let wants_json = std::env::args().any(|a| a == "--json");
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if wants_json {
                let msg = e.render().to_string();
                print_json(&serde_json::json!({
                    "ok": false,
                    "error": {"kind": "usage", "message": msg.trim()}
                }));
            }
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    // A daemon reports what it does; one-shot commands only warn.
    let default_level = match cli.command {
        cli::Command::Daemon(_) => "info",
        _ => "warn",
    };
    init_logging(cli.global.log_format, default_level);
    let json = cli.global.json;
    match cli::run(cli) {
        Ok(out) => {
            if out.streamed {
                return ExitCode::from(out.code as u8);
            }
            if json {
                let mut obj = serde_json::Map::new();
                obj.insert("ok".into(), serde_json::Value::Bool(true));
                obj.extend(out.json);
                print_json(&serde_json::Value::Object(obj));
            } else {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(out.human.as_bytes());
            }
            ExitCode::from(out.code as u8)
        }
        Err(e) => {
            if json {
                print_json(&serde_json::json!({
                    "ok": false,
                    "error": {"kind": e.kind(), "message": e.to_string()}
                }));
            } else {
                eprintln!("gitmesh: error: {e}");
                if e.exit_code() == 2 {
                    eprintln!("\nFor more information, try '--help'.");
                }
            }
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn print_json(v: &serde_json::Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut stdout, v);
    let _ = stdout.write_all(b"\n");
}

fn init_logging(format: cli::LogFormat, default_level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        cli::LogFormat::Json => builder.json().init(),
        cli::LogFormat::Text => builder.with_target(false).init(),
    }
}
