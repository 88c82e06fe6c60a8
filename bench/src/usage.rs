//! [`UsageError`]: bad input from the user, which `main` maps to exit
//! code 2. Its own module so that every command and the parts they share
//! (the lock, the manifest) can raise it without importing each other.

/// Bad input from the user (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
