//! status (to be written)
