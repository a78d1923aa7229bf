//! The account status machine of SPEC §2: five statuses, what each does with new and
//! queued mail, and every allowed transition as one pure function, [`transition`].
//!
//! | status   | colour | new mail | queued mail | entered by |
//! |----------|--------|----------|-------------|------------|
//! | active   | green  | accept   | deliver     | start; unblock from inactive; purge |
//! | force    | green  | accept (bounce ratio doubled) | deliver | unblock from bounce |
//! | inactive | red    | hold     | hold        | burst tripped; operator block |
//! | bounce   | red    | hold     | hold        | bounce ratio exceeded |
//! | spam     | red    | refuse   | hold        | spam refusals over the limit; operator spam |

use std::fmt;
use std::str::FromStr;

/// One hosting account's service status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Active,
    Force,
    Inactive,
    Bounce,
    Spam,
}

/// The status light.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Colour {
    Green,
    Red,
}

/// What a status does with a new mail() call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NewMail {
    /// Checked, queued and delivered (mail() returns true).
    Accept,
    /// Accepted into the queue and held (mail() returns true).
    Hold,
    /// Refused (mail() returns false with a warning).
    Refuse,
}

/// What a status does with mail already in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueuedMail {
    Deliver,
    Hold,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Active,
        Status::Force,
        Status::Inactive,
        Status::Bounce,
        Status::Spam,
    ];

    /// The one string form, used in config, the store, logs, CLI and dashboard.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Force => "force",
            Status::Inactive => "inactive",
            Status::Bounce => "bounce",
            Status::Spam => "spam",
        }
    }

    pub fn colour(self) -> Colour {
        match self {
            Status::Active | Status::Force => Colour::Green,
            Status::Inactive | Status::Bounce | Status::Spam => Colour::Red,
        }
    }

    pub fn is_green(self) -> bool {
        self.colour() == Colour::Green
    }

    pub fn new_mail(self) -> NewMail {
        match self {
            Status::Active | Status::Force => NewMail::Accept,
            Status::Inactive | Status::Bounce => NewMail::Hold,
            Status::Spam => NewMail::Refuse,
        }
    }

    pub fn queued_mail(self) -> QueuedMail {
        match self.colour() {
            Colour::Green => QueuedMail::Deliver,
            Colour::Red => QueuedMail::Hold,
        }
    }

    /// `force` doubles the allowed bounce ratio.
    pub fn bounce_ratio_doubled(self) -> bool {
        self == Status::Force
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status text that is none of the five.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStatus(pub String);

impl fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" is not a status (active, force, inactive, bounce, spam)",
            self.0
        )
    }
}

impl std::error::Error for UnknownStatus {}

impl FromStr for Status {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Status, UnknownStatus> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl Colour {
    pub fn as_str(self) -> &'static str {
        match self {
            Colour::Green => "green",
            Colour::Red => "red",
        }
    }
}

impl fmt::Display for Colour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that may change an account's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// A rule: more accepted messages in the burst window than the burst limit.
    BurstTripped,
    /// A rule: the share of failed deliveries went over the allowed bounce ratio.
    BounceRatioExceeded,
    /// A rule: too many spam refusals in the spam window.
    SpamLimitExceeded,
    /// The operator blocks sending.
    OperatorBlock,
    /// The operator lifts a block (inactive → active, bounce → force).
    OperatorUnblock,
    /// The operator empties the queue and returns the account to active.
    OperatorPurge,
    /// The operator marks the account as sending spam.
    OperatorSpam,
}

impl Event {
    pub const ALL: [Event; 7] = [
        Event::BurstTripped,
        Event::BounceRatioExceeded,
        Event::SpamLimitExceeded,
        Event::OperatorBlock,
        Event::OperatorUnblock,
        Event::OperatorPurge,
        Event::OperatorSpam,
    ];

    /// The reason recorded with the transition; one string form.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::BurstTripped => "burst-limit",
            Event::BounceRatioExceeded => "bounce-ratio",
            Event::SpamLimitExceeded => "spam-limit",
            Event::OperatorBlock => "block",
            Event::OperatorUnblock => "unblock",
            Event::OperatorPurge => "purge",
            Event::OperatorSpam => "spam",
        }
    }

    /// Who causes this event: a rule of the guard or an operator.
    pub fn actor(self) -> Actor {
        match self {
            Event::BurstTripped => Actor::Rule(Rule::Burst),
            Event::BounceRatioExceeded => Actor::Rule(Rule::BounceRatio),
            Event::SpamLimitExceeded => Actor::Rule(Rule::SpamLimit),
            Event::OperatorBlock
            | Event::OperatorUnblock
            | Event::OperatorPurge
            | Event::OperatorSpam => Actor::Operator,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Event {
    type Err = String;
    fn from_str(s: &str) -> Result<Event, String> {
        Event::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| format!("\"{s}\" is not a status event"))
    }
}

/// The guard's rules that can change a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    Burst,
    BounceRatio,
    SpamLimit,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Burst => "burst",
            Rule::BounceRatio => "bounce-ratio",
            Rule::SpamLimit => "spam-limit",
        }
    }
}

/// Who made a transition. Operators are named by the store (`operator:alice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    Rule(Rule),
    Operator,
}

impl fmt::Display for Actor {
    /// `rule:burst`, `rule:bounce-ratio`, `rule:spam-limit`, `operator`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Rule(r) => write!(f, "rule:{}", r.as_str()),
            Actor::Operator => f.write_str("operator"),
        }
    }
}

/// An allowed status change. `from == to` only for a purge of an active account (the
/// purge itself is what is recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transition {
    pub from: Status,
    pub to: Status,
    pub reason: Event,
    pub actor: Actor,
}

impl Transition {
    /// Mail held by the old status is released: red → green.
    pub fn releases_held_mail(&self) -> bool {
        !self.from.is_green() && self.to.is_green()
    }

    /// Queued mail must now be held: green → red.
    pub fn holds_queued_mail(&self) -> bool {
        self.from.is_green() && !self.to.is_green()
    }

    /// The queue of the account is emptied.
    pub fn purges_queue(&self) -> bool {
        self.reason == Event::OperatorPurge
    }
}

/// Why an event does not change the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The account is already in the status the event leads to (block an inactive
    /// account, unblock an active one, ...).
    AlreadyThere { status: Status, event: Event },
    /// The account is in a red status that the event would not make stricter (a burst
    /// or bounce trip while already red, a block while in bounce or spam).
    AlreadyRed { status: Status, event: Event },
    /// Unblock in spam status: purging the queue is mandatory there.
    PurgeRequired,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::AlreadyThere { status, event } => {
                write!(f, "{event}: the account is already {status}")
            }
            Refusal::AlreadyRed { status, event } => write!(
                f,
                "{event}: the account is already {status}, which holds its mail; \
                 unblock or purge it instead"
            ),
            Refusal::PurgeRequired => f.write_str(
                "unblock: the account is in spam status; remove the cause (captcha on forms, \
                 update the CMS and plugins, remove infected files), then purge its queue",
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// The status machine: where `event` takes an account in status `from`.
pub fn transition(from: Status, event: Event) -> Result<Transition, Refusal> {
    use Event as E;
    use Status as S;
    let to = match (from, event) {
        (S::Active | S::Force, E::BurstTripped) => S::Inactive,
        (S::Active | S::Force, E::BounceRatioExceeded) => S::Bounce,
        (S::Active | S::Force, E::OperatorBlock) => S::Inactive,
        (S::Inactive | S::Bounce | S::Spam, E::BurstTripped | E::BounceRatioExceeded) => {
            return Err(Refusal::AlreadyRed {
                status: from,
                event,
            })
        }
        (S::Inactive, E::OperatorBlock) => {
            return Err(Refusal::AlreadyThere {
                status: from,
                event,
            })
        }
        (S::Bounce | S::Spam, E::OperatorBlock) => {
            return Err(Refusal::AlreadyRed {
                status: from,
                event,
            })
        }
        (S::Spam, E::SpamLimitExceeded | E::OperatorSpam) => {
            return Err(Refusal::AlreadyThere {
                status: from,
                event,
            })
        }
        (_, E::SpamLimitExceeded | E::OperatorSpam) => S::Spam,
        (S::Inactive, E::OperatorUnblock) => S::Active,
        (S::Bounce, E::OperatorUnblock) => S::Force,
        (S::Spam, E::OperatorUnblock) => return Err(Refusal::PurgeRequired),
        (S::Active | S::Force, E::OperatorUnblock) => {
            return Err(Refusal::AlreadyThere {
                status: from,
                event,
            })
        }
        // Purge always lands in active; from bounce without the doubled ratio of force.
        (_, E::OperatorPurge) => S::Active,
    };
    Ok(Transition {
        from,
        to,
        reason: event,
        actor: event.actor(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_forms_round_trip() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
            assert_eq!(s.to_string(), s.as_str());
        }
        for e in Event::ALL {
            assert_eq!(e.as_str().parse::<Event>().unwrap(), e);
        }
        assert!("Active".parse::<Status>().is_err());
        assert!("paused"
            .parse::<Status>()
            .unwrap_err()
            .to_string()
            .contains("paused"));
    }

    #[test]
    fn table_of_spec_section_2() {
        use Colour::*;
        let rows = [
            (Status::Active, Green, NewMail::Accept, QueuedMail::Deliver),
            (Status::Force, Green, NewMail::Accept, QueuedMail::Deliver),
            (Status::Inactive, Red, NewMail::Hold, QueuedMail::Hold),
            (Status::Bounce, Red, NewMail::Hold, QueuedMail::Hold),
            (Status::Spam, Red, NewMail::Refuse, QueuedMail::Hold),
        ];
        for (s, c, n, q) in rows {
            assert_eq!(
                (s.colour(), s.new_mail(), s.queued_mail()),
                (c, n, q),
                "{s}"
            );
        }
        assert!(Status::Force.bounce_ratio_doubled());
        assert!(!Status::Active.bounce_ratio_doubled());
        assert_eq!(Colour::Red.to_string(), "red");
    }

    #[test]
    fn actors_and_display() {
        assert_eq!(Event::BurstTripped.actor().to_string(), "rule:burst");
        assert_eq!(
            Event::BounceRatioExceeded.actor().to_string(),
            "rule:bounce-ratio"
        );
        assert_eq!(
            Event::SpamLimitExceeded.actor().to_string(),
            "rule:spam-limit"
        );
        assert_eq!(Event::OperatorPurge.actor().to_string(), "operator");
    }
}
