//! Helpers shared by the unit tests.

use mailguard_core::limits::{Limits, Mode};
use mailguard_core::rate::Timestamp;

use crate::db::Store;
use crate::model::{MessageId, Origin, Submission};

pub(crate) const T0: Timestamp = Timestamp(1_750_000_000_000);

/// One message from `/var/www/form.php:7` to `rcpt`, submitted in enforce mode.
pub(crate) fn submit(
    store: &mut Store,
    account: &str,
    limits: &Limits,
    rcpt: &str,
    now: Timestamp,
) -> MessageId {
    let origin = Origin {
        file: Some("/var/www/form.php".into()),
        line: Some(7),
        ..Origin::default()
    };
    let rcpts = vec![rcpt.to_owned()];
    store
        .submit(
            account,
            limits,
            Submission {
                raw: b"To: x\r\nSubject: s\r\n\r\nbody\r\n",
                envelope_from: "shop@example.com",
                recipients: &rcpts,
                origin: &origin,
                spam: None,
            },
            now,
            Mode::Enforce,
        )
        .unwrap()
        .id
        .unwrap()
}
