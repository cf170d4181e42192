//! The test harness: a local AWS emulator per test, SDK clients bound to it, and fixtures built with the
//! same SDK the functions use.
//!
//! The emulator is moto in server mode with shipshape's extensions (`tests/emulator/`), run from the
//! project's virtualenv (`make venv` creates it; `SHIPSHAPE_EMULATOR_PYTHON` points elsewhere). Each test
//! gets its own process on a free loopback port, so call counts and faults never leak between tests.
//!
//! - [`emulator`]: the process, and its control endpoint (call counts, faults, service switches);
//! - [`World`]: an emulator with SDK clients; fixtures by service in [`ecs`], [`autoscaling`], [`sns`],
//!   [`lambda`], and for task placement in [`placement`];
//! - [`events`]: the sample events in `events/`;
//! - [`step_functions`]: the alias-shifter's state machine definition, followed as Step Functions does;
//! - [`traffic`]: traffic through a Lambda alias as Lambda reports it, and functions that answer as told.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "a harness failure must stop the test, loudly")]

pub mod autoscaling;
pub mod ecs;
pub mod emulator;
pub mod events;
pub mod lambda;
pub mod placement;
pub mod sns;
pub mod step_functions;
pub mod traffic;
mod world;

pub use emulator::{Emulator, available};
pub use events::{repo_root, sample_event, spot_event};
pub use sns::Topic;
pub use world::World;

pub const REGION: &str = "us-east-1";

/// Returns from the test, after saying what to run, when the emulator is not installed (a plain
/// `cargo test` on a fresh checkout). `make test` sets `SHIPSHAPE_REQUIRE_EMULATOR`, and a missing
/// emulator then fails the test instead.
#[macro_export]
macro_rules! needs_emulator {
    () => {
        if !$crate::available() {
            return;
        }
    };
}
