//! `mailguard report`: the daily error report (SPEC §5): one day's failures of an account
//! (time, recipient, code, text, the script that sent it), mailed to the account's
//! report-to address through the configured transport. Cron and systemd-timer friendly:
//! nothing to send is exit 0, silently.

use crate::args::Args;
use crate::notice::Places;

use mailguard_core::rate::{Day, Timestamp};
use mailguard_store::{now, ErrorEntry, Store};

use crate::notice::{self, Mail};

const USAGE: &str = "\
usage: mailguard report (--account NAME | --all) [--day YYYY-MM-DD] [--dry-run]
                        [--state-dir DIR] [--config FILE]
  --day       the UTC day to report (default: yesterday, the last complete day)
  --all       every account with a report-to address
  --dry-run   print the reports instead of sending them
exit: 0 sent or nothing to send, 1 a report could not be sent, 2 usage";

/// At most this many failures are listed in one report (the rest are counted).
const MAX_LINES: usize = 2000;

struct Opts {
    places: Places,
    account: Option<String>,
    all: bool,
    day: Option<Day>,
    dry_run: bool,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        places: Places::default(),
        account: None,
        all: false,
        day: None,
        dry_run: false,
    };
    let mut args = Args::new(args);
    while let Some(key) = args.next_key() {
        if o.places.take(key, &mut args)? {
            continue;
        }
        let mut value = || args.value();
        match key {
            "--all" => o.all = true,
            "--dry-run" => o.dry_run = true,
            "--account" => o.account = Some(value()?),
            "--day" => o.day = Some(parse_day(&value()?)?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.all == o.account.is_some() {
        return Err("give either --account NAME or --all".to_owned());
    }
    Ok(o)
}

/// `YYYY-MM-DD` (a real calendar day).
pub fn parse_day(s: &str) -> Result<Day, String> {
    let err = || format!("--day: {s:?} is not a day like 2026-04-01");
    let parts: Vec<&str> = s.trim().split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(err());
    };
    let (y, m, d): (i32, u32, u32) = (
        y.parse().map_err(|_| err())?,
        m.parse().map_err(|_| err())?,
        d.parse().map_err(|_| err())?,
    );
    // Howard Hinnant's days_from_civil; checked by converting back.
    let yy = if m <= 2 { y - 1 } else { y } as i64;
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let day = Day((era * 146_097 + doe - 719_468) as i32);
    if !(1..=12).contains(&m) || day.ymd() != (y, m, d) {
        return Err(err());
    }
    Ok(day)
}

pub fn run(args: &[String]) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return 0;
    }
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mailguard report: {e}\n{USAGE}");
            return 2;
        }
    };
    match report(&opts) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mailguard report: {e}");
            1
        }
    }
}

fn report(opts: &Opts) -> Result<(), String> {
    let t = now();
    let day = opts.day.unwrap_or(Day(t.day().0 - 1));
    let mut store = Store::open(&opts.places.state_dir).map_err(|e| e.to_string())?;
    let accounts = match &opts.account {
        Some(a) => vec![a.clone()],
        None => store.accounts().map_err(|e| e.to_string())?,
    };
    // The transport is only built when something is to be sent.
    let mut config = None;
    let mut transport: Option<Box<dyn mailguard_transport::Transport + Send>> = None;
    let mut failed = Vec::new();
    for account in accounts {
        let snap = store
            .status_snapshot(&account, t)
            .map_err(|e| e.to_string())?;
        let errors = store.errors_on(&account, day).map_err(|e| e.to_string())?;
        if errors.is_empty() {
            continue;
        }
        let to = match &snap.report_to {
            Some(to) => to.clone(),
            None if opts.dry_run && opts.account.is_some() => {
                "(no report-to address set)".to_owned()
            }
            None => {
                if opts.account.is_some() {
                    eprintln!(
                        "mailguard report: account {account} has {} failure(s) on {day} but no report-to address (set one with mailguard report-to): nothing sent",
                        errors.len()
                    );
                }
                continue;
            }
        };
        if config.is_none() {
            let c = opts.places.load_config()?;
            if !opts.dry_run {
                for n in &c.notices {
                    eprintln!("{n}");
                }
            }
            config = Some(c);
        }
        let c = config.as_ref().expect("loaded above");
        let mail = compose(
            &account,
            day,
            &errors,
            &snap.status.to_string(),
            &c.from,
            &to,
        );
        if opts.dry_run {
            print!(
                "{}",
                String::from_utf8_lossy(&mail.to_bytes(t)).replace("\r\n", "\n")
            );
            println!();
            continue;
        }
        if transport.is_none() {
            transport =
                Some(mailguard_transport::from_config(&c.transport).map_err(|e| e.to_string())?);
        }
        match mail.send(transport.as_mut().expect("built above").as_mut(), t) {
            Ok(()) => println!(
                "mailguard report: {account}: {} failure(s) on {day} sent to {to}",
                errors.len()
            ),
            Err(e) => {
                eprintln!("mailguard report: {account}: the report to {to} could not be sent: {e}");
                failed.push(account);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("not sent for: {}", failed.join(", ")))
    }
}

fn compose(
    account: &str,
    day: Day,
    errors: &[ErrorEntry],
    status: &str,
    from: &str,
    to: &str,
) -> Mail {
    let mut body = vec![
        format!(
            "Failed deliveries of hosting account {account} on {day} (UTC): {}.",
            errors.len()
        ),
        format!("The account's mail status now: {status}."),
        String::new(),
        "time (UTC)  recipient  code  reply  script".to_owned(),
    ];
    for e in errors.iter().take(MAX_LINES) {
        body.push(line(e));
    }
    if errors.len() > MAX_LINES {
        body.push(format!(
            "... and {} more (mailguard errors --account {account})",
            errors.len() - MAX_LINES
        ));
    }
    body.push(String::new());
    body.push(
        "Addresses that do not exist should be removed from the site's forms and lists;".to_owned(),
    );
    body.push("many failures turn the account's mail off (status bounce).".to_owned());
    body.push(String::new());
    body.push("-- ".to_owned());
    body.push("mailguard daily error report (sent automatically)".to_owned());
    Mail {
        from: from.to_owned(),
        to: to.to_owned(),
        subject: format!(
            "mailguard: {} failed deliveries of {account} on {day}",
            errors.len()
        ),
        body,
        kind: "report".to_owned(),
    }
}

fn line(e: &ErrorEntry) -> String {
    let time = time_of_day(e.time);
    let code = [e.code.map(|c| c.to_string()), e.enhanced.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "{time}  {}  {}  {}  {}",
        if e.recipient.is_empty() {
            "*"
        } else {
            &e.recipient
        },
        if code.is_empty() {
            "-".to_owned()
        } else {
            code
        },
        e.text,
        notice::script_line(&e.origin)
    )
}

fn time_of_day(t: Timestamp) -> String {
    let s = t.to_string();
    s.split_once('T')
        .map(|(_, hms)| hms.to_owned())
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_and_round_trip() {
        let d = parse_day("2024-05-14").unwrap();
        assert_eq!(d.to_string(), "2024-05-14");
        assert_eq!(parse_day("1970-01-01").unwrap(), Day(0));
        assert_eq!(parse_day("2024-02-29").unwrap().to_string(), "2024-02-29");
        assert!(parse_day("2023-02-29").is_err());
        assert!(parse_day("2024-13-01").is_err());
        assert!(parse_day("yesterday").is_err());
    }
}
