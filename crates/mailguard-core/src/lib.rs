//! mailguard-core: the pure policy of mailguard. No I/O, no clock, no PHP.
//!
//! - [`message`]: the message as mail() hands it over, its size and the 5th parameter.
//! - [`status`]: the account status machine (active, force, inactive, bounce, spam).
//! - [`rate`]: sliding-log rate arithmetic (quota and burst).
//! - [`spam`]: the outbound spam scorer.
//! - [`dsn`]: RFC 3464 delivery-status notifications.

pub mod dsn;
pub mod message;
pub mod rate;
pub mod spam;
pub mod status;
