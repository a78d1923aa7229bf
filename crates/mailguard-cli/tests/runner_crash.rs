//! The long-running `mailguard run`: a kill -9 in the middle of a batch loses nothing,
//! SIGTERM finishes cleanly with exit 0, and one runner per state directory.

#[path = "runner_harness/mod.rs"]
mod harness;

use std::process::Stdio;

use harness::{limits, mailguard, message, run_once, wait_for, Server, State};
use mailguard_store::{now, MessageState};

#[test]
fn kill_9_mid_batch_loses_nothing() {
    // The relay stalls at DATA: the runner is stuck inside its first delivery.
    let stall = Server::start("crash-stall", "implicit", "good", &["--mode", "stall"]);
    let state = State::new("crash");
    let l = limits("0.1/20/24h");
    let raws: Vec<Vec<u8>> = (0..5)
        .map(|n| message("shop", n, "customer@example.org"))
        .collect();
    let ids: Vec<_> = raws
        .iter()
        .map(|raw| state.submit_due("shop", &l, &["customer@example.org"], raw))
        .collect();
    let config = stall.config(&state.dir, "");
    let mut child = mailguard()
        .args(["run", "--interval", "1s", "--state-dir"])
        .arg(&state.dir)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the runner to reach DATA", || {
        stall.events().iter().any(|e| e == "DATA")
    });
    // Everything is claimed by the runner now.
    {
        let mut store = state.store();
        let sending = ids
            .iter()
            .filter(|id| store.queue_show(**id).unwrap().entry.state == MessageState::Sending)
            .count();
        assert_eq!(sending, 5);
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(stall);

    // Restarted against a healthy relay: every message arrives (none lost).
    let good = Server::start("crash-good", "implicit", "good", &[]);
    let out = run_once(&state, &good.config(&state.dir, ""));
    assert!(
        out.contains("stopped without recording"),
        "the restart says what it took back: {out}"
    );
    let got = good.messages();
    for raw in &raws {
        assert!(
            got.iter().any(|(eml, _)| eml == raw),
            "a message was lost: {out}"
        );
    }
    assert_eq!(got.len(), 5, "{out}");
    let mut store = state.store();
    for id in &ids {
        let e = store.queue_show(*id).unwrap().entry;
        assert_eq!(e.state, MessageState::Sent);
        assert_eq!(e.attempts, 1, "a crash is no failed attempt");
    }
    assert_eq!(store.status_snapshot("shop", now()).unwrap().sent_total, 5);
    assert!(store.check_integrity().unwrap().is_ok());
}

#[test]
fn sigterm_stops_cleanly_and_one_runner_per_state_dir() {
    let server = Server::start("sigterm", "implicit", "good", &[]);
    let state = State::new("sigterm");
    let id = state.submit_due(
        "shop",
        &limits("0.1/20/24h"),
        &["customer@example.org"],
        &message("shop", 1, "customer@example.org"),
    );
    let config = server.config(&state.dir, "");
    let child = mailguard()
        .args(["run", "--interval", "200ms", "--state-dir"])
        .arg(&state.dir)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the delivery", || server.messages().len() == 1);
    wait_for("the record", || {
        state.store().queue_show(id).unwrap().entry.state == MessageState::Sent
    });

    // A second runner on the same state directory is refused.
    let out = harness::run(&[
        "run",
        "--once",
        "--state-dir",
        state.dir.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", harness::text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another mailguard run"));

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", harness::text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("message {id} (shop): sent")),
        "{stdout}"
    );
    assert!(stdout.contains("sent 1,"), "{stdout}");
}
