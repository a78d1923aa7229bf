//! The operator's account table: which account a caller's uid belongs to and what
//! applies to it. Read from the `[accounts]`, `[plans.NAME]` and `[account.NAME]` tables
//! of the root-owned operator file, never from anything a guarded process can write.
//!
//! ```toml
//! [accounts]
//! map = "user"             # an unlisted uid's account is its user name ("uid": uid-1001; "deny")
//! quota = "200/1h"         # defaults for every account (same syntax as the INI settings)
//! burst = "50/1m"
//! [accounts.users]         # user name or uid -> account
//! shop = "shop-example-com"
//! [plans.small]
//! quota = "100/1h"
//! [account.shop-example-com]
//! plan = "small"
//! allow_control = true
//! ```

use std::collections::BTreeMap;

use mailguard_core::limits::{parse_duration, Limits, Mode};
use mailguard_core::message::{Bytes, DEFAULT_MAX_MESSAGE_SIZE};
use mailguard_core::rate::parse_windows;
use toml::{Table, Value};

/// What applies to one account.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub account: String,
    pub limits: Limits,
    pub mode: Mode,
    pub max_message_size: Bytes,
    pub spam_check: bool,
    /// The account's own scripts may block, unblock and purge it and read its log.
    pub allow_control: bool,
}

/// How an unlisted uid becomes an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapRule {
    /// Its user name (`shop`); a uid without a name is refused.
    User,
    /// `uid-1001`.
    Uid,
    /// Refused: only `[accounts.users]` may submit.
    Deny,
}

/// The settings one table may give (the defaults, a plan, an account).
#[derive(Debug, Clone, Default, PartialEq)]
struct Settings {
    quota: Option<String>,
    burst: Option<String>,
    count: Option<String>,
    max_recipients: Option<String>,
    hold: Option<String>,
    mode: Option<String>,
    max_message_size: Option<String>,
    spam_check: Option<bool>,
    allow_control: Option<bool>,
    queue_share: Option<u64>,
}

/// An account's default share of the queue in hardened mode: no one account can fill the
/// queue every account shares (10,000 messages by default, `[serve] queue_max_messages`).
pub const DEFAULT_QUEUE_SHARE: u64 = 2_000;

const SETTING_KEYS: [&str; 10] = [
    "quota",
    "burst",
    "count",
    "max_recipients",
    "hold",
    "mode",
    "max_message_size",
    "spam_check",
    "allow_control",
    "queue_share",
];

impl Settings {
    fn read(t: &Table, place: &str, extra: &[&str]) -> Result<Settings, String> {
        for k in t.keys() {
            if !SETTING_KEYS.contains(&k.as_str()) && !extra.contains(&k.as_str()) {
                let mut known: Vec<&str> = SETTING_KEYS.to_vec();
                known.extend_from_slice(extra);
                return Err(format!(
                    "{place}.{k}: unknown key (known: {})",
                    known.join(", ")
                ));
            }
        }
        let text = |k: &str| -> Result<Option<String>, String> {
            match t.get(k) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(format!("{place}.{k}: must be a string, not {v:?}")),
            }
        };
        let flag = |k: &str| -> Result<Option<bool>, String> {
            match t.get(k) {
                None => Ok(None),
                Some(Value::Boolean(b)) => Ok(Some(*b)),
                Some(v) => Err(format!("{place}.{k}: must be true or false, not {v:?}")),
            }
        };
        Ok(Settings {
            quota: text("quota")?,
            burst: text("burst")?,
            count: text("count")?,
            max_recipients: match t.get("max_recipients") {
                None => None,
                Some(Value::Integer(n)) => Some(n.to_string()),
                Some(Value::String(s)) => Some(s.clone()),
                Some(v) => {
                    return Err(format!(
                        "{place}.max_recipients: must be a number or \"\" (no cap), not {v:?}"
                    ))
                }
            },
            hold: text("hold")?,
            mode: text("mode")?,
            max_message_size: text("max_message_size")?,
            spam_check: flag("spam_check")?,
            allow_control: flag("allow_control")?,
            queue_share: match t.get("queue_share") {
                None => None,
                Some(Value::Integer(n)) if *n > 0 => Some(*n as u64),
                Some(v) => {
                    return Err(format!(
                        "{place}.queue_share: must be a positive number of messages, not {v:?}"
                    ))
                }
            },
        })
    }

    /// `over` wins where it sets a key.
    fn then(&self, over: &Settings) -> Settings {
        Settings {
            quota: over.quota.clone().or_else(|| self.quota.clone()),
            burst: over.burst.clone().or_else(|| self.burst.clone()),
            count: over.count.clone().or_else(|| self.count.clone()),
            max_recipients: over
                .max_recipients
                .clone()
                .or_else(|| self.max_recipients.clone()),
            hold: over.hold.clone().or_else(|| self.hold.clone()),
            mode: over.mode.clone().or_else(|| self.mode.clone()),
            max_message_size: over
                .max_message_size
                .clone()
                .or_else(|| self.max_message_size.clone()),
            spam_check: over.spam_check.or(self.spam_check),
            allow_control: over.allow_control.or(self.allow_control),
            queue_share: over.queue_share.or(self.queue_share),
        }
    }

    fn policy(&self, account: &str, place: &str) -> Result<Policy, String> {
        let mut limits = Limits {
            account_queue_max: Some(self.queue_share.unwrap_or(DEFAULT_QUEUE_SHARE)),
            ..Limits::default()
        };
        if let Some(q) = &self.quota {
            limits.quota = parse_windows(q).map_err(|e| format!("{place}.quota: {e}"))?;
        }
        if let Some(b) = &self.burst {
            limits.burst = parse_windows(b).map_err(|e| format!("{place}.burst: {e}"))?;
        }
        if let Some(c) = &self.count {
            limits.counting = c.parse().map_err(|e| format!("{place}.count: {e}"))?;
        }
        if let Some(n) = &self.max_recipients {
            limits.max_recipients = mailguard_core::limits::parse_max_recipients(n)
                .map_err(|e| format!("{place}.max_recipients: {e}"))?;
        }
        if let Some(h) = &self.hold {
            limits.hold = parse_duration(h).map_err(|e| format!("{place}.hold: {e}"))?;
        }
        let mode = match &self.mode {
            None => Mode::Enforce,
            Some(m) => m.parse().map_err(|e| format!("{place}.mode: {e}"))?,
        };
        let max_message_size = match &self.max_message_size {
            None => DEFAULT_MAX_MESSAGE_SIZE,
            Some(s) => Bytes::parse(s).map_err(|e| format!("{place}.max_message_size: {e}"))?,
        };
        Ok(Policy {
            account: account.to_owned(),
            limits,
            mode,
            max_message_size,
            spam_check: self.spam_check.unwrap_or(true),
            allow_control: self.allow_control.unwrap_or(false),
        })
    }
}

/// The whole table, validated once at start (and at each reload).
#[derive(Debug, Clone)]
pub struct Accounts {
    map: MapRule,
    /// User name or decimal uid -> account.
    users: BTreeMap<String, String>,
    /// Account -> its policy, for accounts named in `[account.*]`.
    named: BTreeMap<String, Policy>,
    /// Policy of any other account (the defaults), with the account name filled in later.
    defaults: Settings,
}

/// An account name as the store and the CLI take it.
pub fn valid_account(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

fn table<'a>(v: Option<&'a Value>, place: &str) -> Result<Option<&'a Table>, String> {
    match v {
        None => Ok(None),
        Some(Value::Table(t)) => Ok(Some(t)),
        Some(_) => Err(format!("{place}: must be a table ([{place}])")),
    }
}

impl Accounts {
    /// Reads `[accounts]`, `[plans.*]` and `[account.*]` from the operator file.
    pub fn from_toml(root: &Table) -> Result<Accounts, String> {
        let empty = Table::new();
        let accounts = table(root.get("accounts"), "accounts")?.unwrap_or(&empty);
        let defaults = Settings::read(accounts, "accounts", &["map", "users"])?;
        let map = match accounts.get("map") {
            None => MapRule::User,
            Some(Value::String(s)) => match s.as_str() {
                "user" => MapRule::User,
                "uid" => MapRule::Uid,
                "deny" => MapRule::Deny,
                other => {
                    return Err(format!(
                        "accounts.map: \"{other}\" is not one of \"user\", \"uid\", \"deny\""
                    ))
                }
            },
            Some(v) => return Err(format!("accounts.map: must be a string, not {v:?}")),
        };
        let mut users = BTreeMap::new();
        if let Some(t) = table(accounts.get("users"), "accounts.users")? {
            for (who, account) in t {
                let Value::String(account) = account else {
                    return Err(format!(
                        "accounts.users.{who}: must be an account name in quotes"
                    ));
                };
                if !valid_account(account) {
                    return Err(format!(
                        "accounts.users.{who}: \"{account}\" may only use letters, digits and - _ . @"
                    ));
                }
                users.insert(who.clone(), account.clone());
            }
        }
        let mut plans = BTreeMap::new();
        if let Some(t) = table(root.get("plans"), "plans")? {
            for (name, v) in t {
                let place = format!("plans.{name}");
                let t = table(Some(v), &place)?.expect("present");
                plans.insert(name.clone(), Settings::read(t, &place, &[])?);
            }
        }
        let mut named = BTreeMap::new();
        if let Some(t) = table(root.get("account"), "account")? {
            for (name, v) in t {
                let place = format!("account.{name}");
                if !valid_account(name) {
                    return Err(format!(
                        "{place}: the account name may only use letters, digits and - _ . @"
                    ));
                }
                let t = table(Some(v), &place)?.expect("present");
                let own = Settings::read(t, &place, &["plan"])?;
                let base = match t.get("plan") {
                    None => defaults.clone(),
                    Some(Value::String(p)) => match plans.get(p) {
                        Some(plan) => defaults.then(plan),
                        None => return Err(format!("{place}.plan: no [plans.{p}] table")),
                    },
                    Some(v) => return Err(format!("{place}.plan: must be a string, not {v:?}")),
                };
                named.insert(name.clone(), base.then(&own).policy(name, &place)?);
            }
        }
        // Check the defaults once, so a bad default fails at start, not at the first mail.
        defaults.policy("default", "accounts")?;
        Ok(Accounts {
            map,
            users,
            named,
            defaults,
        })
    }

    /// The account of the caller with this uid and (if it has one) user name, or why it
    /// has none.
    pub fn resolve(&self, uid: u32, user: Option<&str>) -> Result<Policy, String> {
        let listed = user
            .and_then(|u| self.users.get(u))
            .or_else(|| self.users.get(&uid.to_string()));
        let account = match (listed, self.map) {
            (Some(a), _) => a.clone(),
            (None, MapRule::User) => match user {
                Some(u) if valid_account(u) => u.to_owned(),
                Some(u) => {
                    return Err(format!(
                    "the user name \"{u}\" of uid {uid} is not a valid account name; list it in [accounts.users]"
                ))
                }
                None => {
                    return Err(format!(
                        "uid {uid} has no user name; list it in [accounts.users]"
                    ))
                }
            },
            (None, MapRule::Uid) => format!("uid-{uid}"),
            (None, MapRule::Deny) => {
                return Err(format!(
                    "uid {uid} is not listed in [accounts.users] of the operator file"
                ))
            }
        };
        match self.named.get(&account) {
            Some(p) => Ok(p.clone()),
            None => self.defaults.policy(&account, "accounts"),
        }
    }

    /// The largest size limit of any account: what the socket reads at most.
    pub fn max_message_size(&self) -> u64 {
        let default = self
            .defaults
            .policy("default", "accounts")
            .map(|p| p.max_message_size.0)
            .unwrap_or(DEFAULT_MAX_MESSAGE_SIZE.0);
        self.named
            .values()
            .map(|p| p.max_message_size.0)
            .fold(default, u64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Accounts, String> {
        Accounts::from_toml(&text.parse::<Table>().unwrap())
    }

    #[test]
    fn users_plans_and_accounts_combine() {
        let a = load(
            r#"
            [accounts]
            quota = "200/1h"
            burst = "50/1m"
            [accounts.users]
            shop = "shop-example-com"
            "1003" = "blog"
            [plans.small]
            quota = "100/1h, 500/1d"
            count = "messages"
            max_recipients = 20
            [account.shop-example-com]
            plan = "small"
            burst = "10/1m"
            allow_control = true
            "#,
        )
        .unwrap();
        let p = a.resolve(1001, Some("shop")).unwrap();
        assert_eq!(p.account, "shop-example-com");
        assert_eq!(p.limits.quota.to_string(), "100/1h, 500/1d");
        assert_eq!(p.limits.burst.to_string(), "10/1m");
        assert_eq!(
            p.limits.counting,
            mailguard_core::limits::Counting::Messages
        );
        assert_eq!(p.limits.max_recipients, Some(20));
        assert!(p.allow_control);
        let b = a.resolve(1003, None).unwrap();
        assert_eq!(b.account, "blog");
        assert_eq!(b.limits.quota.to_string(), "200/1h");
        assert_eq!(b.limits.max_recipients, Some(100), "the default cap");
        assert_eq!(b.limits.account_queue_max, Some(DEFAULT_QUEUE_SHARE));
        assert!(!b.allow_control);
        let other = a.resolve(1004, Some("alice")).unwrap();
        assert_eq!(other.account, "alice");
    }

    #[test]
    fn deny_and_uid_rules() {
        let a = load("[accounts]\nmap = \"deny\"\n[accounts.users]\nshop = \"s\"\n").unwrap();
        assert!(a.resolve(5, Some("eve")).is_err());
        assert_eq!(a.resolve(5, Some("shop")).unwrap().account, "s");
        let a = load("[accounts]\nmap = \"uid\"\n").unwrap();
        assert_eq!(a.resolve(1234, Some("x")).unwrap().account, "uid-1234");
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        assert!(load("[accounts]\nqouta = \"1/1h\"\n")
            .unwrap_err()
            .contains("accounts.qouta: unknown key"));
        assert!(load("[accounts]\nquota = \"lots\"\n").is_err());
        assert!(load("[account.x]\nplan = \"nope\"\n")
            .unwrap_err()
            .contains("no [plans.nope]"));
        assert!(load("[accounts.users]\nshop = \"bad name\"\n").is_err());
        assert!(load("[accounts]\nmap = \"everyone\"\n").is_err());
    }
}
