//! mailguard-transport
