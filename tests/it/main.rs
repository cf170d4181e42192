//! The integration tests: every function's handler with the real AWS SDK against the local emulator, one
//! module per function (one test binary: one link, one place to look).
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "helpers of tests: a failure must stop the test")]

mod alias_shifter;
mod chaos;
mod events;
mod launch;
mod lifecycle_drainer;
mod scale_in_cleaner;
mod scenarios;
mod spot_drainer;
mod stack;
mod upgrade;
