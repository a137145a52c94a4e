//! What the distributed GBDT driver and its aggregates send each other.
//!
//! The driver (`ember train`) holds the model; aggregates on executors hold
//! rows. A [`GradientPlan`] (objective and fixed-point scale of a round) and
//! a [`LevelPlan`] (the tree so far and which nodes to build) travel in the
//! queries as JSON string literals, and histograms and sketches come back as
//! binary aggregate results. Nothing here is user input, but it is
//! still checked: a bad message is an error, not an out-of-bounds walk.

use serde::{Deserialize, Serialize};

use crate::training::error::{TrainError, TrainResult};
use crate::training::gbdt::booster::LabelStats;
use crate::training::gbdt::grad::{GradPair, MAX_SCALE_LOG2, Quantiser};
use crate::training::gbdt::hist;
use crate::training::gbdt::sketch::{FeatureSketch, take, take_u64};
use crate::training::gbdt::tree::Tree;
use crate::training::params::Objective;

/// The largest histogram a level may ask for (2²⁴ entries, 256 MiB).
pub const MAX_HISTOGRAM_ENTRIES: usize = 1 << 24;

/// The most features a level may have.
pub const MAX_FEATURES: usize = 1 << 16;

/// Bytes before the histograms in a level's result: the missing-row count.
const MISSING_BYTES: usize = 8;

/// A level's result as sent back to the driver: the rows not held by the
/// processes that ran it (little-endian `u64`), then the histograms.
pub fn level_result_to_bytes(missing: u64, hist: &[GradPair]) -> Vec<u8> {
    let mut out = missing.to_le_bytes().to_vec();
    out.extend_from_slice(&hist::to_bytes(hist));
    out
}

/// Reads a result written by [`level_result_to_bytes`] whose histograms
/// have `len` entries.
pub fn level_result_from_bytes(
    function: &'static str,
    bytes: &[u8],
    len: usize,
) -> TrainResult<(u64, Vec<GradPair>)> {
    if bytes.len() < MISSING_BYTES {
        return Err(TrainError::Message {
            function,
            reason: format!("a level result of {} bytes", bytes.len()),
        });
    }
    let mut missing = [0u8; MISSING_BYTES];
    missing.copy_from_slice(&bytes[..MISSING_BYTES]);
    Ok((
        u64::from_le_bytes(missing),
        hist::from_bytes(function, &bytes[MISSING_BYTES..], len)?,
    ))
}

/// How a round's gradients are computed from label and margin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradientPlan {
    /// XGBoost's objective name.
    pub objective: String,
    /// The round's fixed-point scale.
    pub quantiser: Quantiser,
}

impl GradientPlan {
    /// Parses and checks a plan.
    pub fn parse(function: &'static str, text: &str) -> TrainResult<(Objective, Quantiser)> {
        let plan: GradientPlan = serde_json::from_str(text).map_err(|e| TrainError::Message {
            function,
            reason: e.to_string(),
        })?;
        plan.check(function)
    }

    /// Checks a plan and returns its objective and scale.
    pub fn check(&self, function: &'static str) -> TrainResult<(Objective, Quantiser)> {
        let objective =
            Objective::from_name(&self.objective).ok_or_else(|| TrainError::Message {
                function,
                reason: format!("objective {}", self.objective),
            })?;
        if self.quantiser.scale_log2 > MAX_SCALE_LOG2 || self.quantiser.scale_log2 < 0 {
            return Err(TrainError::Message {
                function,
                reason: format!("scale 2^{}", self.quantiser.scale_log2),
            });
        }
        Ok((objective, self.quantiser))
    }
}

/// One level's histogram request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelPlan {
    /// Number of features (bin columns).
    pub features: usize,
    /// Bins per feature in the histogram, missing included.
    pub stride: usize,
    /// The nodes to build, in histogram order.
    pub build: Vec<u32>,
    /// The tree so far.
    pub tree: Tree,
}

impl LevelPlan {
    /// Parses and checks a plan.
    pub fn parse(function: &'static str, text: &str) -> TrainResult<Self> {
        let plan: LevelPlan = serde_json::from_str(text).map_err(|e| TrainError::Message {
            function,
            reason: e.to_string(),
        })?;
        plan.check(function)
    }

    /// Checks a plan (tree, stride, nodes to build, histogram size).
    pub fn check(self, function: &'static str) -> TrainResult<Self> {
        if self.features == 0 || self.features > MAX_FEATURES {
            return Err(TrainError::Message {
                function,
                reason: format!("{} features (1 to {MAX_FEATURES})", self.features),
            });
        }
        self.tree.validate(function, self.features)?;
        if self.stride < 2
            || self.stride > 65_536
            || self
                .build
                .iter()
                .any(|n| *n as usize >= self.tree.nodes.len())
        {
            return Err(TrainError::Message {
                function,
                reason: "stride or node out of range".into(),
            });
        }
        let mut seen = vec![false; self.tree.nodes.len()];
        for node in &self.build {
            let id = *node as usize;
            if seen[id] || !self.tree.nodes[id].is_leaf() {
                return Err(TrainError::Message {
                    function,
                    reason: format!("node {id} built twice or already split"),
                });
            }
            seen[id] = true;
        }
        let entries = self
            .build
            .len()
            .saturating_mul(self.features)
            .saturating_mul(self.stride);
        if entries > MAX_HISTOGRAM_ENTRIES {
            return Err(TrainError::Message {
                function,
                reason: format!(
                    "a histogram of {entries} entries exceeds the limit of {MAX_HISTOGRAM_ENTRIES} (fewer features, bins or a smaller max_depth)"
                ),
            });
        }
        Ok(self)
    }
}

/// One level's histogram request to the resident rows of a training run
/// (see `distributed::gbdt_resident`): the level, plus what a process needs
/// to bring its rows of the run up to this round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResidentLevelPlan {
    /// The training run the rows belong to.
    pub run: String,
    /// The boosting round (trees finished before this one).
    pub round: u32,
    /// Every row's margin before the first tree (sent as its bit pattern).
    #[serde(with = "crate::training::exact_float::f64_bits")]
    pub start: f64,
    /// How this round's gradients are computed.
    pub gradient: GradientPlan,
    /// The level to build.
    pub level: LevelPlan,
    /// Index of the first tree in `trees`.
    pub trees_from: u32,
    /// Finished trees `trees_from..round`: rows whose margins are older than
    /// `trees_from` cannot catch up from this plan.
    pub trees: Vec<Tree>,
}

impl ResidentLevelPlan {
    /// Parses and checks a plan; returns it with its objective and scale.
    pub fn parse(function: &'static str, text: &str) -> TrainResult<(Self, Objective, Quantiser)> {
        let mut plan: ResidentLevelPlan =
            serde_json::from_str(text).map_err(|e| TrainError::Message {
                function,
                reason: e.to_string(),
            })?;
        let (objective, quantiser) = plan.gradient.check(function)?;
        plan.level = plan.level.check(function)?;
        let bad = |reason: String| TrainError::Message { function, reason };
        if plan.run.is_empty() || !plan.start.is_finite() {
            return Err(bad("no run or a non-finite start margin".into()));
        }
        check_finished_trees(
            function,
            plan.round,
            plan.trees_from,
            &plan.trees,
            plan.level.features,
        )?;
        Ok((plan, objective, quantiser))
    }
}

/// Checks that `trees` are the finished trees `trees_from..round` over
/// `features` features, as plans that bring kept rows up to a round carry them.
pub fn check_finished_trees(
    function: &'static str,
    round: u32,
    trees_from: u32,
    trees: &[Tree],
    features: usize,
) -> TrainResult<()> {
    let end = u64::from(trees_from) + trees.len() as u64;
    if end != u64::from(round) {
        return Err(TrainError::Message {
            function,
            reason: format!("trees {trees_from}..{end} for round {round}"),
        });
    }
    for tree in trees {
        tree.validate(function, features)?;
    }
    Ok(())
}

/// The merged result of the sketch pass: label statistics and one sketch per feature.
#[derive(Debug, Clone, PartialEq)]
pub struct SketchState {
    /// Label statistics.
    pub labels: LabelStats,
    /// One sketch per feature.
    pub features: Vec<FeatureSketch>,
}

impl SketchState {
    /// Serialises the state.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.labels.count.to_le_bytes());
        out.extend_from_slice(&self.labels.sum.to_le_bytes());
        out.push(u8::from(self.labels.all_zero_or_one));
        out.extend_from_slice(&self.labels.min.to_le_bytes());
        out.extend_from_slice(&self.labels.max.to_le_bytes());
        out.extend_from_slice(&(self.features.len() as u64).to_le_bytes());
        for sketch in &self.features {
            sketch.to_bytes(&mut out);
        }
        out
    }

    /// Reads a state written by [`Self::to_bytes`].
    pub fn from_bytes(function: &'static str, bytes: &[u8]) -> TrainResult<Self> {
        let mut input = bytes;
        let count = take_u64(function, &mut input)?;
        let mut sum = [0u8; 16];
        sum.copy_from_slice(take(function, &mut input, 16)?);
        let all = take(function, &mut input, 1)?[0] != 0;
        let min = f64::from_bits(take_u64(function, &mut input)?);
        let max = f64::from_bits(take_u64(function, &mut input)?);
        let n = take_u64(function, &mut input)?;
        if n > 1 << 20 {
            return Err(TrainError::Message {
                function,
                reason: format!("{n} features"),
            });
        }
        let features = (0..n)
            .map(|_| FeatureSketch::from_bytes(function, &mut input))
            .collect::<TrainResult<Vec<_>>>()?;
        Ok(Self {
            labels: LabelStats {
                count,
                sum: i128::from_le_bytes(sum),
                all_zero_or_one: all,
                min,
                max,
            },
            features,
        })
    }

    /// Merges another partial state.
    pub fn merge(&mut self, other: &SketchState) -> TrainResult<()> {
        if other.features.len() != self.features.len() {
            return Err(TrainError::Message {
                function: "train_gbdt",
                reason: "sketches of different widths".into(),
            });
        }
        self.labels.merge(&other.labels);
        for (a, b) in self.features.iter_mut().zip(&other.features) {
            a.merge(b);
        }
        Ok(())
    }
}
