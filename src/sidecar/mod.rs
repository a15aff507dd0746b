//! The sidecar's duty: wait until it is ready, tell it to quit, never hang on it.

pub mod client;
pub mod endpoints;
mod fallback;
mod lookup;
mod procscan;
pub mod quit;
pub mod shared;
pub mod url;
pub mod wait;

#[cfg(test)]
mod fuzz;
