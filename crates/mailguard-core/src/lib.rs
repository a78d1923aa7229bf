//! mailguard-core: the pure policy of mailguard. No I/O, no clock, no PHP.
//!
//! - [`account`]: admission of one message (status, burst, quota) and rule trips.
//! - [`address`]: envelope sender and recipient syntax (one address, never an option).
//! - [`intake`]: what the daemon checks again on every message it receives.
//! - [`limits`]: per-account limits and observe/enforce mode, with defaults.
//! - [`message`]: the message as mail() hands it over, its size and the 5th parameter.
//! - [`origin`]: which PHP frames are mail libraries, eval()'d code.
//! - [`status`]: the account status machine (active, force, inactive, bounce, spam).
//! - [`rate`]: sliding-log rate arithmetic (quota and burst).
//! - [`spam`]: the outbound spam scorer.
//! - [`dsn`]: RFC 3464 delivery-status notifications.
//! - [`outcome`]: how a delivery attempt ended ([`outcome::Outcome`], [`outcome::Plan`]).

pub mod account;
pub mod address;
pub mod dsn;
pub mod intake;
pub mod limits;
pub mod message;
pub mod origin;
pub mod outcome;
pub mod rate;
pub mod spam;
pub mod status;
