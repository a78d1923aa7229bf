//! mailguard-store
