//! Submit latency against the physical floor, in the same run (SPEC §10: ratios, not
//! absolute timings). Run: `cargo bench -p mailguard-store --bench submit [-- N]`.
//!
//! - `submit`: `Store::submit` of a 5 KB message (quota and burst checked, released),
//!   WAL + synchronous=FULL, behind the writers' gate.
//! - `submit+sent`: the accept and the delivery record (two commits), as the extension's
//!   deliver-now path does.
//! - `floor`: one 5 KB write + fsync of a new file + fsync of its directory.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::time::{Duration, Instant};

use mailguard_store::{Limits, Mode, Origin, Outcome, Store, Submission, Timestamp};

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut v: Vec<Duration>) -> Duration {
    let p50 = pct(&mut v, 0.50);
    let p99 = pct(&mut v, 0.99);
    println!(
        "{name:<12} n={:<5} p50={:>8.3} ms  p99={:>8.3} ms  max={:>8.3} ms",
        v.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        v.last().unwrap().as_secs_f64() * 1e3
    );
    p50
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    let tmp =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))
            .unwrap();
    let mut body =
        b"To: customer@example.net\r\nSubject: Your order 1234\r\nFrom: shop@example.org\r\n\r\n"
            .to_vec();
    while body.len() < 5 * 1024 {
        body.extend_from_slice(b"Thank you for your order. It will ship within two days.\r\n");
    }
    body.truncate(5 * 1024);
    let rcpts = vec!["customer@example.net".to_string()];
    let origin = Origin {
        file: Some("/var/www/shop/checkout.php".into()),
        line: Some(120),
        sapi: Some("web".into()),
        ..Origin::default()
    };
    let limits: Limits = "quota=1000000/1h burst=1000000/1m".parse().unwrap();
    let mut store = Store::open(tmp.path().join("state")).unwrap();
    let sub = Submission {
        raw: &body,
        envelope_from: "shop@example.org",
        recipients: &rcpts,
        origin: &origin,
        spam: None,
    };
    let t0 = mailguard_store::now().as_millis();

    // Interleave the three measurements so that disk noise hits them alike.
    let (mut submit, mut both, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    let spool = tmp.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let dir = File::open(&spool).unwrap();
    for i in 0..n {
        let now = Timestamp(t0 + i as i64);
        let s = Instant::now();
        store
            .submit("bench", &limits, sub, now, Mode::Enforce)
            .unwrap();
        submit.push(s.elapsed());

        let s = Instant::now();
        let a = store
            .submit("bench", &limits, sub, now, Mode::Enforce)
            .unwrap();
        store
            .record_delivery(
                a.id.unwrap(),
                &Outcome::Sent { rejected: vec![] }.into(),
                now,
            )
            .unwrap();
        both.push(s.elapsed());

        let s = Instant::now();
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(spool.join(i.to_string()))
            .unwrap();
        f.write_all(&body).unwrap();
        f.sync_all().unwrap();
        dir.sync_all().unwrap();
        floor.push(s.elapsed());
    }
    println!(
        "5 KB message, {n} rounds, state in {}",
        tmp.path().display()
    );
    let a = report("submit", submit);
    let b = report("submit+sent", both);
    let f = report("floor", floor);
    println!(
        "ratio p50: submit/floor = {:.2}x, submit+sent/floor = {:.2}x",
        a.as_secs_f64() / f.as_secs_f64(),
        b.as_secs_f64() / f.as_secs_f64()
    );
    assert!(store.check_integrity().unwrap().is_ok());
}
