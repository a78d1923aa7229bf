//! Many processes on one state directory: exact quota across processes, SIGKILL at random
//! points, and a store handle carried across fork(). The children are this test binary
//! itself, re-run with `MG_CHILD` set to pick the child's role.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use mailguard_core::rate::mix64;
use mailguard_store::{now, Action, MessageId, Mode, Outcome, Store};

fn child(role: &str, dir: &std::path::Path, extra: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        role,
        "--nocapture",
        "--test-threads=1",
        "--quiet",
    ])
    .env("MG_CHILD", role)
    .env("MG_DIR", dir)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn is_child(role: &str) -> Option<std::path::PathBuf> {
    (std::env::var("MG_CHILD").ok()? == role).then(|| std::env::var("MG_DIR").unwrap().into())
}

const PROCS: usize = 6;
const EACH: usize = 25;
const QUOTA: usize = 40;

/// Child role: submit EACH messages as fast as possible, print the action of each.
#[test]
fn child_submitter() {
    let Some(dir) = is_child("child_submitter") else {
        return;
    };
    let mut store = Store::open(&dir).unwrap();
    let l = limits(&format!("quota={QUOTA}/1h burst="));
    let mut out = std::io::stdout().lock();
    for n in 0..EACH {
        let a = submit(
            &mut store,
            "acct",
            &l,
            n,
            t(0).plus(Duration::from_millis(n as u64)),
            Mode::Enforce,
        );
        let word = match a.action {
            Action::DeliverNow => "deliver",
            Action::Queued { .. } => "queued",
            _ => "other",
        };
        writeln!(out, "{word} {}", a.id.unwrap()).unwrap();
    }
}

#[test]
fn quota_is_exact_across_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    Store::open(&dir).unwrap();
    let children: Vec<Child> = (0..PROCS)
        .map(|_| child("child_submitter", &dir, &[]))
        .collect();
    let mut deliver = 0;
    let mut queued = 0;
    let mut released = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            match line.split_whitespace().next() {
                Some("deliver") => {
                    deliver += 1;
                    released.push(MessageId(line[8..].parse().unwrap()));
                }
                Some("queued") => queued += 1,
                _ => {}
            }
        }
    }
    assert_eq!(deliver, QUOTA, "exactly the quota is released");
    assert_eq!(queued, PROCS * EACH - QUOTA, "the rest is queued");
    let mut store = Store::open(&dir).unwrap();
    let s = store.status_snapshot("acct", t(10)).unwrap();
    assert_eq!(s.queued as usize, PROCS * EACH);
    for id in released {
        store
            .record_delivery(id, &Outcome::Sent { rejected: vec![] }.into(), t(20))
            .unwrap();
    }
    assert_eq!(
        store.status_snapshot("acct", t(20)).unwrap().sent_total as usize,
        QUOTA
    );
    // The runner releases nothing more inside the window...
    assert!(store.due(t(3599), 1000).unwrap().claimed.is_empty());
    // ...and exactly the quota once it has moved on (the first releases leave at 3600 s).
    let due = store
        .due(t(3600).plus(Duration::from_millis(EACH as u64)), 1000)
        .unwrap();
    assert_eq!(due.claimed.len(), QUOTA);
    assert_integrity(&mut store);
}

/// Child role: submit, deliver and run the queue forever, printing every accepted id
/// only after `submit` returned (the point where mail() would return true).
#[test]
fn child_crasher() {
    let Some(dir) = is_child("child_crasher") else {
        return;
    };
    let seed: u64 = std::env::var("MG_SEED").unwrap().parse().unwrap();
    let mut store = Store::open(&dir).unwrap();
    let l = limits("quota=30/1s burst= bounce=0.5/1000/1h");
    let mut out = std::io::stdout().lock();
    for n in 0.. {
        let r = mix64(seed ^ n);
        let a = submit(
            &mut store,
            &format!("acct{}", r % 3),
            &l,
            n as usize,
            now(),
            Mode::Enforce,
        );
        writeln!(out, "accepted {}", a.id.unwrap()).unwrap();
        out.flush().unwrap();
        if a.action == Action::DeliverNow {
            let outcome = if r.is_multiple_of(7) {
                Outcome::PermFail(vec![])
            } else {
                Outcome::Sent { rejected: vec![] }
            };
            store
                .record_delivery(a.id.unwrap(), &outcome.into(), now())
                .unwrap();
        }
        if r.is_multiple_of(5) {
            for c in store.due(now(), 5).unwrap().claimed {
                let outcome = if r.is_multiple_of(2) {
                    Outcome::Sent { rejected: vec![] }
                } else {
                    Outcome::TempFail {
                        code: Some(451),
                        enhanced: None,
                        text: "later".into(),
                    }
                };
                store.record_delivery(c.id, &outcome.into(), now()).unwrap();
            }
        }
        if r.is_multiple_of(97) {
            let _ = store.block(&format!("acct{}", r % 3), "chaos", now());
        } else if r.is_multiple_of(89) {
            let _ = store.unblock(&format!("acct{}", r % 3), "chaos", now());
        }
    }
}

#[test]
fn kill_9_at_random_points_loses_nothing_and_counters_match() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    Store::open(&dir).unwrap();
    let accepted: Arc<Mutex<Vec<i64>>> = Arc::default();
    let spawn = |seed: u64| {
        let mut c = child("child_crasher", &dir, &[("MG_SEED", seed.to_string())]);
        let stdout = c.stdout.take().unwrap();
        let acc = accepted.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(id) = line.strip_prefix("accepted ") {
                    acc.lock().unwrap().push(id.parse().unwrap());
                }
            }
        });
        (c, reader)
    };
    let mut procs: Vec<_> = (0..4u64).map(spawn).collect();
    let mut kills = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        let r = mix64(kills ^ 0xdead_beef ^ start.elapsed().as_nanos() as u64);
        std::thread::sleep(Duration::from_millis(5 + r % 60));
        let victim = (r % procs.len() as u64) as usize;
        let (mut c, reader) = procs.swap_remove(victim);
        c.kill().unwrap(); // SIGKILL
        c.wait().unwrap();
        reader.join().unwrap();
        kills += 1;
        procs.push(spawn(1000 + kills));
    }
    for (mut c, reader) in procs {
        c.kill().unwrap();
        c.wait().unwrap();
        reader.join().unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    let mut store = Store::open(&dir).unwrap();
    let report = store.check_integrity().unwrap();
    assert!(
        report.is_ok(),
        "after {kills} kills: {:#?}",
        report.problems
    );
    assert!(kills >= 30, "only {kills} kills");
    assert!(accepted.len() > 200, "only {} accepted", accepted.len());
    // Every message a child saw accepted is still there (or was sent / failed: rows stay).
    for id in &accepted {
        assert!(
            store.queue_show(MessageId(*id)).is_ok(),
            "accepted message {id} was lost"
        );
    }
    eprintln!(
        "crash test: {kills} SIGKILLs, {} accepted, {} ledger rows, {} messages, integrity ok",
        accepted.len(),
        report.ledger_rows,
        report.messages
    );
}

/// Child role: open, submit, fork; both sides keep using the same `Store` value.
#[test]
fn child_forker() {
    let Some(dir) = is_child("child_forker") else {
        return;
    };
    let mut store = Store::open(&dir).unwrap();
    let l = limits("quota= burst=");
    submit(&mut store, "acct", &l, 0, t(0), Mode::Enforce);
    // SAFETY (test only): the child runs single-threaded work (SQLite in its own fresh
    // connection) and leaves with _exit.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for n in 1..20 {
                    submit(&mut store, "acct", &l, n, t(n as i64), Mode::Enforce);
                }
            }))
            .is_ok();
            unsafe { nix::libc::_exit(if ok { 0 } else { 1 }) };
        }
        nix::unistd::ForkResult::Parent { child } => {
            for n in 20..40 {
                submit(&mut store, "acct", &l, n, t(n as i64), Mode::Enforce);
            }
            let status = nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(status, nix::sys::wait::WaitStatus::Exited(child, 0));
        }
    }
}

#[test]
fn a_handle_carried_across_fork_reopens_in_the_child() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let out = child("child_forker", &dir, &[]).wait_with_output().unwrap();
    assert!(out.status.success());
    let mut store = Store::open(&dir).unwrap();
    assert_eq!(store.status_snapshot("acct", t(100)).unwrap().queued, 40);
    assert_integrity(&mut store);
}
