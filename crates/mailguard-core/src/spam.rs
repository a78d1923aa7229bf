//! spam (to be written)
