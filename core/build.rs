//! No build step. This script exists so that `[build-dependencies]` in this
//! crate's manifest take part in feature resolution: they switch on, for
//! every build, the host-side features that the workspace's dev-dependencies
//! (criterion, proptest, rstest) switch on for test builds, as the features
//! of `serde` and `plotters` in the workspace manifest do for the target
//! side. Without them,
//! `cargo run --bin ember` after `cargo test --workspace` (README's two
//! commands) compiled DataFusion and Ballista a second time, with other
//! features (the workspace-hack pattern of `cargo hakari`).
fn main() {}
