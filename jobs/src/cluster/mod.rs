//! Local clusters: Ember's processes on this machine.

pub mod launch;
pub mod local;
