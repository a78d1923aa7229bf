//! Every (status, event) pair of the status machine, allowed or refused, against the
//! table of SPEC §2. A new status or event makes `the_table_is_complete` fail.

use mailguard_core::status::{transition, Actor, Event, Refusal, Rule, Status, Transition};

use Event as E;
use Status as S;

/// `Ok(to)` for an allowed transition, `Err(refusal)` for a refused one.
fn expected(from: Status, event: Event) -> Result<Status, Refusal> {
    let there = Err(Refusal::AlreadyThere {
        status: from,
        event,
    });
    let red = Err(Refusal::AlreadyRed {
        status: from,
        event,
    });
    match (from, event) {
        (S::Active, E::BurstTripped) => Ok(S::Inactive),
        (S::Force, E::BurstTripped) => Ok(S::Inactive),
        (S::Inactive, E::BurstTripped) => red,
        (S::Bounce, E::BurstTripped) => red,
        (S::Spam, E::BurstTripped) => red,

        (S::Active, E::BounceRatioExceeded) => Ok(S::Bounce),
        (S::Force, E::BounceRatioExceeded) => Ok(S::Bounce),
        (S::Inactive, E::BounceRatioExceeded) => red,
        (S::Bounce, E::BounceRatioExceeded) => red,
        (S::Spam, E::BounceRatioExceeded) => red,

        (S::Active, E::SpamLimitExceeded) => Ok(S::Spam),
        (S::Force, E::SpamLimitExceeded) => Ok(S::Spam),
        (S::Inactive, E::SpamLimitExceeded) => Ok(S::Spam),
        (S::Bounce, E::SpamLimitExceeded) => Ok(S::Spam),
        (S::Spam, E::SpamLimitExceeded) => there,

        (S::Active, E::OperatorBlock) => Ok(S::Inactive),
        (S::Force, E::OperatorBlock) => Ok(S::Inactive),
        (S::Inactive, E::OperatorBlock) => there,
        (S::Bounce, E::OperatorBlock) => red,
        (S::Spam, E::OperatorBlock) => red,

        (S::Active, E::OperatorUnblock) => there,
        (S::Force, E::OperatorUnblock) => there,
        (S::Inactive, E::OperatorUnblock) => Ok(S::Active),
        (S::Bounce, E::OperatorUnblock) => Ok(S::Force),
        (S::Spam, E::OperatorUnblock) => Err(Refusal::PurgeRequired),

        (S::Active, E::OperatorPurge) => Ok(S::Active),
        (S::Force, E::OperatorPurge) => Ok(S::Active),
        (S::Inactive, E::OperatorPurge) => Ok(S::Active),
        (S::Bounce, E::OperatorPurge) => Ok(S::Active),
        (S::Spam, E::OperatorPurge) => Ok(S::Active),

        (S::Active, E::OperatorSpam) => Ok(S::Spam),
        (S::Force, E::OperatorSpam) => Ok(S::Spam),
        (S::Inactive, E::OperatorSpam) => Ok(S::Spam),
        (S::Bounce, E::OperatorSpam) => Ok(S::Spam),
        (S::Spam, E::OperatorSpam) => there,
    }
}

#[test]
fn every_pair_matches_the_table() {
    let mut allowed = 0;
    let mut refused = 0;
    for from in Status::ALL {
        for event in Event::ALL {
            let got = transition(from, event);
            match expected(from, event) {
                Ok(to) => {
                    allowed += 1;
                    assert_eq!(
                        got,
                        Ok(Transition {
                            from,
                            to,
                            reason: event,
                            actor: event.actor()
                        }),
                        "{from} + {event}"
                    );
                }
                Err(refusal) => {
                    refused += 1;
                    assert_eq!(got, Err(refusal), "{from} + {event}");
                }
            }
        }
    }
    assert_eq!((allowed, refused), (21, 14));
}

#[test]
fn the_table_is_complete() {
    assert_eq!(Status::ALL.len() * Event::ALL.len(), 35);
}

#[test]
fn rules_and_operators_are_told_apart() {
    let t = transition(S::Active, E::BurstTripped).unwrap();
    assert_eq!(t.actor, Actor::Rule(Rule::Burst));
    assert_eq!(t.actor.to_string(), "rule:burst");
    let t = transition(S::Force, E::BounceRatioExceeded).unwrap();
    assert_eq!(t.actor, Actor::Rule(Rule::BounceRatio));
    let t = transition(S::Bounce, E::SpamLimitExceeded).unwrap();
    assert_eq!(t.actor, Actor::Rule(Rule::SpamLimit));
    for e in [
        E::OperatorBlock,
        E::OperatorUnblock,
        E::OperatorPurge,
        E::OperatorSpam,
    ] {
        assert_eq!(e.actor(), Actor::Operator);
    }
}

#[test]
fn side_effects_on_the_queue() {
    let unblock = transition(S::Inactive, E::OperatorUnblock).unwrap();
    assert!(
        unblock.releases_held_mail() && !unblock.holds_queued_mail() && !unblock.purges_queue()
    );
    let to_force = transition(S::Bounce, E::OperatorUnblock).unwrap();
    assert!(to_force.releases_held_mail());
    assert!(to_force.to.bounce_ratio_doubled());
    let block = transition(S::Force, E::OperatorBlock).unwrap();
    assert!(block.holds_queued_mail() && !block.releases_held_mail());
    let purge = transition(S::Bounce, E::OperatorPurge).unwrap();
    assert!(purge.purges_queue() && purge.releases_held_mail());
    assert!(
        !purge.to.bounce_ratio_doubled(),
        "purge from bounce does not double the ratio"
    );
    let purge_active = transition(S::Active, E::OperatorPurge).unwrap();
    assert!(purge_active.purges_queue() && !purge_active.releases_held_mail());
    let spam = transition(S::Bounce, E::SpamLimitExceeded).unwrap();
    assert!(!spam.holds_queued_mail(), "bounce already held its mail");
}

#[test]
fn refusals_explain_what_to_do() {
    let r = transition(S::Spam, E::OperatorUnblock).unwrap_err();
    assert!(r.to_string().contains("purge"), "{r}");
    let r = transition(S::Inactive, E::OperatorBlock).unwrap_err();
    assert_eq!(r.to_string(), "block: the account is already inactive");
    let r = transition(S::Bounce, E::BurstTripped).unwrap_err();
    assert!(r.to_string().contains("already bounce"), "{r}");
}

#[test]
fn every_status_is_reachable_and_purge_always_recovers() {
    // From active, some sequence of events reaches each status, and purge returns to active.
    for target in Status::ALL {
        let path: &[Event] = match target {
            S::Active => &[],
            S::Force => &[E::BounceRatioExceeded, E::OperatorUnblock],
            S::Inactive => &[E::BurstTripped],
            S::Bounce => &[E::BounceRatioExceeded],
            S::Spam => &[E::SpamLimitExceeded],
        };
        let mut s = S::Active;
        for e in path {
            s = transition(s, *e).unwrap().to;
        }
        assert_eq!(s, target);
        assert_eq!(transition(s, E::OperatorPurge).unwrap().to, S::Active);
    }
}
