//! The init's duty: own the signals, start the task, forward and reap until it is gone.

pub mod child;
pub mod signals;
pub mod supervisor;
