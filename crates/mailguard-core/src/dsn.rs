//! dsn (to be written)
