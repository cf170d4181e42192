//! The drain core: what both drainers and the scale-in-cleaner share to drain an instance and to know
//! when it is done, reading the truth from AWS at the time of acting.
//!
//! - [`marker`]: our mark on a drained container instance, one format for every function;
//! - [`act`]: setting DRAINING and ACTIVE, with the marker, in the order that keeps it honest;
//! - [`instances`]: every registration of an EC2 instance in the configured clusters;
//! - [`tasks`]: what is still on an instance, and when an empty look can be trusted;
//! - [`hooks`]: which lifecycle hooks are ours, answered by instance id and hook name.

pub mod act;
pub mod hooks;
pub mod instances;
pub mod marker;
pub mod tasks;

pub use marker::{Marker, Owner, Phase};
