//! `mailguard`: the operator's command. Each subcommand lives in its own module;
//! this file only dispatches.

mod admin;
// The argument walker is shared with `mailguard dashboard`, which lives in its own crate.
use mailguard_dashboard::args;
mod bounce;
mod check;
mod notice;
mod report;
mod run;
mod sendmail;
mod serve;

const USAGE: &str = "\
usage: mailguard COMMAND [OPTIONS]

account commands (each takes --state-dir DIR, default /var/lib/mailguard):
  status, block, unblock, purge, history, errors, transitions, report-to, queue, integrity,
  quarantine (list|show|release|delete refused spam), track (each message's path)
hardened mode:
  serve      the daemon that owns the state: submission socket, group commit, delivery
  sendmail   a sendmail-compatible entry that submits to the daemon
delivery and reports:
  run        deliver queued mail (long-running, or --once)
  bounce     read an RFC 3464 delivery-status notification on stdin
  report     send the day's failures to each account's report-to address
web:
  dashboard  the account owner's panel, JSON API and /metrics
spam:
  check      score a message (FILE.eml or -) and list the rules it hits

run `mailguard COMMAND --help` for a command's options";

fn main() {
    // Installed (or linked) as `sendmail`, it is the sendmail entry point.
    let argv0 = std::env::args().next().unwrap_or_default();
    if std::path::Path::new(&argv0)
        .file_name()
        .is_some_and(|n| n == "sendmail")
    {
        let args: Vec<String> = std::env::args().skip(1).collect();
        std::process::exit(sendmail::run(&args));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first().map(String::as_str) else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let code = match cmd {
        c if admin::COMMANDS.contains(&c) => admin::run(c, &args[1..]),
        "run" => run::run(&args[1..]),
        "serve" => serve::run(&args[1..]),
        "sendmail" => sendmail::run(&args[1..]),
        "bounce" => bounce::run(&args[1..]),
        "report" => report::run(&args[1..]),
        "check" => check::run(&args[1..]),
        "dashboard" => mailguard_dashboard::run(&args[1..]),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            0
        }
        "--version" | "version" => {
            println!("mailguard {}", env!("CARGO_PKG_VERSION"));
            0
        }
        other => {
            eprintln!("mailguard: unknown command \"{other}\"\n{USAGE}");
            2
        }
    };
    std::process::exit(code);
}
