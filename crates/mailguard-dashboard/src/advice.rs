//! What each status means for the account owner and what to do about it: the hosting
//! guide's advice per state, in one line each, shared by the page and the API.

use mailguard_core::status::{transition, Event, Status};

/// The meaning and the remedy of a status.
pub struct Advice {
    pub meaning: &'static str,
    pub what_to_do: &'static str,
}

pub fn for_status(status: Status) -> Advice {
    match status {
        Status::Active => Advice {
            meaning: "Sending works: mail from your scripts is checked, queued and delivered.",
            what_to_do: "If mail does not arrive, check your scripts for errors, test with a short \
                         mail() script, do not set an SMTP server in scripts that use mail(), and keep \
                         messages under 10 MB. Protect your forms with a captcha.",
        },
        Status::Force => Advice {
            meaning: "Sending works after an unblock from bounce: the allowed share of failed \
                      mail is doubled.",
            what_to_do: "Remove the addresses that fail (see the error log) before it trips \
                         again; a purge instead returns to active without doubling.",
        },
        Status::Inactive => Advice {
            meaning: "Sending is blocked: too much mail was sent very fast, or sending was \
                      blocked by hand. New mail waits in the queue for up to 72 hours.",
            what_to_do: "Find the script that sent it (see the scripts below), fix it, then \
                         unblock: the waiting mail is sent again.",
        },
        Status::Bounce => Advice {
            meaning: "Sending is blocked: too much of your mail came back as errors. New mail \
                      waits in the queue for up to 72 hours.",
            what_to_do: "Clean your recipient lists (see the error log), then unblock (status \
                         force: the allowed error share is doubled) or purge (the queue is \
                         deleted, status active without doubling).",
        },
        Status::Spam => Advice {
            meaning: "Sending is blocked: mail from this hosting was judged to be spam, and new \
                      mail is refused.",
            what_to_do: "Protect every form with a captcha, remove infected files, update the \
                         CMS, its plugins and themes; then purge the queue (mandatory: unblock is \
                         not possible in this status). If it comes back, reply to the abuse \
                         notice.",
        },
    }
}

/// The owner's actions, in the order the page shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Block,
    Unblock,
    Purge,
    ReportTo,
}

impl Action {
    pub const ALL: [Action; 4] = [
        Action::Block,
        Action::Unblock,
        Action::Purge,
        Action::ReportTo,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Unblock => "unblock",
            Action::Purge => "purge",
            Action::ReportTo => "report-to",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn title(self) -> &'static str {
        match self {
            Action::Block => "Block sending",
            Action::Unblock => "Unblock sending",
            Action::Purge => "Purge the queue",
            Action::ReportTo => "Change the report recipient",
        }
    }

    /// What the action does, shown on its confirmation page.
    pub fn consequence(self, status: Status) -> String {
        match self {
            Action::Block => "New mail from your scripts will wait in the queue (for up to 72 \
                              hours) and nothing is delivered until you unblock."
                .to_owned(),
            Action::Unblock => match status {
                Status::Bounce => "Sending resumes in status force (the allowed share of \
                                   failed mail is doubled); the waiting mail is sent again."
                    .to_owned(),
                _ => "Sending resumes (status active); the waiting mail is sent again.".to_owned(),
            },
            Action::Purge => "Every message waiting in the queue is deleted for good and the \
                              status returns to active. The error log is kept."
                .to_owned(),
            Action::ReportTo => "The daily error report and the notices sent when sending is \
                                 blocked go to this address."
                .to_owned(),
        }
    }

    /// The status event, for the actions that change the status.
    pub fn event(self) -> Option<Event> {
        match self {
            Action::Block => Some(Event::OperatorBlock),
            Action::Unblock => Some(Event::OperatorUnblock),
            Action::Purge => Some(Event::OperatorPurge),
            Action::ReportTo => None,
        }
    }

    /// Whether the status machine allows the action now, and if not why (in one line).
    pub fn allowed(self, status: Status) -> Result<(), String> {
        match self.event() {
            None => Ok(()),
            Some(e) => transition(status, e).map(|_| ()).map_err(|r| r.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unblock_is_refused_in_spam_and_purge_always_allowed() {
        assert!(Action::Unblock.allowed(Status::Spam).is_err());
        assert!(Action::Unblock.allowed(Status::Inactive).is_ok());
        assert!(Action::Block.allowed(Status::Active).is_ok());
        assert!(Action::Block.allowed(Status::Spam).is_err());
        for s in Status::ALL {
            assert!(Action::Purge.allowed(s).is_ok());
            assert!(!for_status(s).meaning.is_empty());
        }
        assert_eq!(Action::parse("report-to"), Some(Action::ReportTo));
        assert_eq!(Action::parse("x"), None);
    }
}
