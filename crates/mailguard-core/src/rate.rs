//! rate (to be written)
