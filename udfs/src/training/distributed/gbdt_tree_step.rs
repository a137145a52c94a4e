//! One step of a *tree job*: a whole tree grown in one Ballista job on a
//! cluster, one stage per level, with no round trip to the driver between
//! levels.
//!
//! Why: on a cluster each level query is a Ballista job of two stages (sum
//! the partitions' histograms, merge them), and the driver then picks the
//! splits and plans the next query. That fixed cost — planning, two stage
//! launches, the result fetch — was about 30 ms of every level's 54 ms, so
//! 600 levels spent more time being scheduled than computing. A tree job
//! keeps the histograms moving between executors instead: every task of a
//! stage sends its partition's histograms to every task of the next stage
//! (an all-reduce through Ballista's hash shuffle), and every task merges
//! them and picks the same splits with the same code the driver uses —
//! the sums are integers and the split search is deterministic, so every
//! task grows the identical tree. The driver sends one job per tree and
//! gets the finished tree back.
//!
//! What a task keeps between the stages of a job is a [`PartitionState`],
//! named after its partition (the binned table's files it reads): the
//! partition's batches of kept rows ([`super::gbdt_resident`]) and the
//! tree's [`GrowerState`], whose parent histograms the next level's sibling
//! subtraction needs. A task that does not find its partition's state at
//! the level it expects — Ballista ran the partition on another executor
//! this time, or the rows were never kept — answers
//! [`StepMessage::Missing`], the job's result says so, and the driver grows
//! that tree with level queries instead, which rebuild what is missing.
//! Either way the tree is the same.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::training::distributed::gbdt_resident::{self, SharedPartition, SharedRows};
use crate::training::distributed::resident_rows::RowKey;
use crate::training::error::{TrainError, TrainResult};
use crate::training::gbdt::grad::{GradPair, Quantiser};
use crate::training::gbdt::hist::{self, HistShape, NO_SLOT};
use crate::training::gbdt::messages::{
    GradientPlan, LevelPlan, ResidentLevelPlan, check_finished_trees,
};
use crate::training::gbdt::tree::{Grower, GrowerState, Tree, check_histogram_budget};
use crate::training::params::{GbdtParams, MAX_DEPTH, Objective};

/// Names this step in errors.
const FUNCTION: &str = "train_gbdt";

/// The tree parameters a tree job grows with (the rest of [`GbdtParams`]
/// belongs to the driver). Floats travel as bit patterns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeParams {
    /// Maximum depth.
    pub max_depth: usize,
    /// Learning rate.
    #[serde(with = "crate::training::exact_float::f64_bits")]
    pub eta: f64,
    /// L2 regularisation on leaf weights.
    #[serde(with = "crate::training::exact_float::f64_bits")]
    pub lambda: f64,
    /// Minimum hessian sum in a child.
    #[serde(with = "crate::training::exact_float::f64_bits")]
    pub min_child_weight: f64,
    /// Minimum loss reduction to split.
    #[serde(with = "crate::training::exact_float::f64_bits")]
    pub gamma: f64,
}

impl TreeParams {
    /// The tree parameters of `params`.
    pub fn of(params: &GbdtParams) -> Self {
        Self {
            max_depth: params.max_depth,
            eta: params.eta,
            lambda: params.lambda,
            min_child_weight: params.min_child_weight,
            gamma: params.gamma,
        }
    }

    fn to_params(&self, max_bins: usize) -> GbdtParams {
        GbdtParams {
            max_depth: self.max_depth,
            eta: self.eta,
            lambda: self.lambda,
            min_child_weight: self.min_child_weight,
            gamma: self.gamma,
            max_bins,
            ..GbdtParams::default()
        }
    }
}

/// What the driver sends a tree job: the round, and everything a partition
/// needs to bring its rows to it and grow the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeJobPlan {
    /// The training run the rows belong to.
    pub run: String,
    /// The boosting round (trees finished before this one).
    pub round: u32,
    /// Every row's margin before the first tree (sent as its bit pattern).
    #[serde(with = "crate::training::exact_float::f64_bits")]
    pub start: f64,
    /// How this round's gradients are computed.
    pub gradient: GradientPlan,
    /// Tree parameters.
    pub params: TreeParams,
    /// Cut points per feature, as `f32` bit patterns.
    pub cuts: Vec<Vec<u32>>,
    /// Index of the first tree in `trees`.
    pub trees_from: u32,
    /// Finished trees `trees_from..round`, for rows that missed some.
    pub trees: Vec<Tree>,
}

impl TreeJobPlan {
    /// Parses and checks a plan.
    pub fn parse(text: &str) -> TrainResult<Self> {
        let plan: TreeJobPlan = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let (_, quantiser) = plan.gradient.check(FUNCTION)?;
        if plan.run.is_empty() || !plan.start.is_finite() {
            return Err(bad(
                "a tree job with no run or a non-finite start margin".into()
            ));
        }
        if !(1..=MAX_DEPTH).contains(&plan.params.max_depth) {
            return Err(bad(format!(
                "a tree job of depth {}",
                plan.params.max_depth
            )));
        }
        let features = plan.cuts.len();
        check_finished_trees(FUNCTION, plan.round, plan.trees_from, &plan.trees, features)?;
        let cuts = plan.float_cuts();
        let params = plan.params.to_params(plan.max_bins());
        check_histogram_budget(FUNCTION, &params, &cuts)?;
        // The root's level plan checks features, bins and histogram size.
        LevelPlan {
            features,
            stride: plan.stride(),
            build: vec![0],
            tree: Grower::new(&params, &cuts, quantiser).tree().clone(),
        }
        .check(FUNCTION)?;
        Ok(plan)
    }

    /// Stages of the job: the root's histograms, then one per level.
    pub fn stages(&self) -> usize {
        self.params.max_depth + 1
    }

    fn float_cuts(&self) -> Vec<Vec<f32>> {
        self.cuts
            .iter()
            .map(|c| c.iter().map(|b| f32::from_bits(*b)).collect())
            .collect()
    }

    fn max_bins(&self) -> usize {
        self.cuts.iter().map(|c| c.len() + 1).max().unwrap_or(1)
    }

    fn stride(&self) -> usize {
        self.max_bins() + 1
    }
}

fn bad(reason: String) -> TrainError {
    TrainError::Message {
        function: FUNCTION,
        reason,
    }
}

/// A batch of the binned table as a tree job's first stage reads it: its
/// first and last row keys and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchKeys {
    /// The first row's key.
    pub first: RowKey,
    /// The last row's key.
    pub last: RowKey,
    /// Rows in the batch.
    pub len: usize,
}

/// Where a partition is in the tree being grown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Nothing in progress (a tree was finished or abandoned).
    Idle,
    /// The histograms of level `depth` of tree `round` were sent.
    Sent { round: u32, depth: usize },
}

/// The round's parameters and cuts, which the tree's grower borrows.
#[derive(Debug)]
struct RoundSetup {
    run: String,
    round: u32,
    start: f64,
    gradient: GradientPlan,
    objective: Objective,
    quantiser: Quantiser,
    params: GbdtParams,
    cuts: Vec<Vec<f32>>,
}

/// A partition's state between the stages of tree jobs (see the module docs).
#[derive(Debug)]
pub struct PartitionState {
    batches: Vec<SharedRows>,
    step: Step,
    setup: Option<Arc<RoundSetup>>,
    grower: Option<GrowerState>,
}

/// What a task of a tree job sends every task of the next stage (and the
/// last stage returns to the driver).
#[derive(Debug, Clone, PartialEq)]
pub enum StepMessage {
    /// The partition's histograms of the level's nodes.
    Histograms(Vec<GradPair>),
    /// The tree is finished.
    Finished(Tree),
    /// A partition's rows or state were not held where its task ran: so
    /// many rows (0 when unknown). The job cannot finish the tree.
    Missing(u64),
}

const HISTOGRAMS: u8 = b'H';
const FINISHED: u8 = b'T';
const MISSING: u8 = b'M';

impl StepMessage {
    /// The message as bytes: a tag, then histograms, a tree's JSON or a count.
    pub fn to_bytes(&self) -> TrainResult<Vec<u8>> {
        Ok(match self {
            StepMessage::Histograms(hist) => {
                let mut out = vec![HISTOGRAMS];
                out.extend_from_slice(&hist::to_bytes(hist));
                out
            }
            StepMessage::Finished(tree) => {
                let mut out = vec![FINISHED];
                serde_json::to_writer(&mut out, &FinishedTree::of(tree))
                    .map_err(|e| bad(format!("a finished tree as JSON: {e}")))?;
                out
            }
            StepMessage::Missing(rows) => {
                let mut out = vec![MISSING];
                out.extend_from_slice(&rows.to_le_bytes());
                out
            }
        })
    }

    /// Reads a message written by [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> TrainResult<Self> {
        let Some((tag, body)) = bytes.split_first() else {
            return Err(bad("an empty tree-job message".into()));
        };
        match *tag {
            HISTOGRAMS if body.len().is_multiple_of(16) => Ok(StepMessage::Histograms(
                hist::from_bytes(FUNCTION, body, body.len() / 16)?,
            )),
            FINISHED => serde_json::from_slice::<FinishedTree>(body)
                .map_err(|e| bad(format!("a tree-job message's tree: {e}")))
                .and_then(FinishedTree::into_tree)
                .map(StepMessage::Finished),
            MISSING if body.len() == 8 => {
                let mut count = [0u8; 8];
                count.copy_from_slice(body);
                Ok(StepMessage::Missing(u64::from_le_bytes(count)))
            }
            _ => Err(bad(format!(
                "a tree-job message of {} bytes with tag {tag}",
                bytes.len()
            ))),
        }
    }
}

/// A finished tree as the driver's model needs it: the nodes as level plans
/// carry them, plus what plans leave out (split values, gains, Hessian
/// sums), all as bit patterns.
#[derive(Debug, Serialize, Deserialize)]
struct FinishedTree {
    tree: Tree,
    split_values: Vec<u32>,
    gains: Vec<u64>,
    hess: Vec<u64>,
}

impl FinishedTree {
    fn of(tree: &Tree) -> Self {
        Self {
            tree: tree.clone(),
            split_values: tree.nodes.iter().map(|n| n.split_value.to_bits()).collect(),
            gains: tree.nodes.iter().map(|n| n.gain.to_bits()).collect(),
            hess: tree.nodes.iter().map(|n| n.hess.to_bits()).collect(),
        }
    }

    fn into_tree(self) -> TrainResult<Tree> {
        let mut tree = self.tree;
        let nodes = tree.nodes.len();
        if self.split_values.len() != nodes || self.gains.len() != nodes || self.hess.len() != nodes
        {
            return Err(bad(format!(
                "a finished tree of {nodes} nodes with other lengths"
            )));
        }
        for (i, node) in tree.nodes.iter_mut().enumerate() {
            node.split_value = f32::from_bits(self.split_values[i]);
            node.gain = f64::from_bits(self.gains[i]);
            node.hess = f64::from_bits(self.hess[i]);
        }
        Ok(tree)
    }
}

/// The state this process holds for partition `name` of `run`, if any.
pub fn held_partition(run: &str, name: &str) -> Option<SharedPartition> {
    gbdt_resident::find_partition(run, name)
}

/// Forgets partition `name` of `run` (a tree job found it unusable; the
/// next one makes it again from the row keys).
pub fn forget_partition(run: &str, name: &str) {
    gbdt_resident::forget_partition(run, name);
}

/// Makes partition `name` of `run` from the batches this process keeps
/// (found by their row keys, as level queries keep them); `None` when any
/// batch is not held here.
pub fn partition_from_keys(run: &str, name: &str, keys: &[BatchKeys]) -> Option<SharedPartition> {
    let mut batches = Vec::with_capacity(keys.len());
    for key in keys {
        let rows = gbdt_resident::find(run, key.first)?;
        let matches = rows
            .lock()
            .map(|r| r.len() == key.len && r.last_key() == key.last)
            .unwrap_or(false);
        if !matches {
            return None;
        }
        batches.push(rows);
    }
    Some(gbdt_resident::keep_partition(
        run,
        name,
        keys.iter().map(|k| k.first).collect(),
        PartitionState {
            batches,
            step: Step::Idle,
            setup: None,
            grower: None,
        },
    ))
}

/// Rows in a partition's batches (for [`StepMessage::Missing`]).
fn rows_of(batches: &[SharedRows]) -> u64 {
    batches
        .iter()
        .map(|b| b.lock().map(|r| r.len() as u64).unwrap_or(0))
        .sum()
}

/// The first stage of a tree job on one partition: brings its rows to the
/// plan's round and sums the root's histograms.
pub fn start_tree(plan: &TreeJobPlan, partition: &SharedPartition) -> TrainResult<StepMessage> {
    let (objective, quantiser) = plan.gradient.check(FUNCTION)?;
    let setup = Arc::new(RoundSetup {
        run: plan.run.clone(),
        round: plan.round,
        start: plan.start,
        gradient: plan.gradient.clone(),
        objective,
        quantiser,
        params: plan.params.to_params(plan.max_bins()),
        cuts: plan.float_cuts(),
    });
    let Ok(mut state) = partition.lock() else {
        return Ok(StepMessage::Missing(0));
    };
    state.step = Step::Idle;
    state.grower = None;
    let grower = Grower::new(&setup.params, &setup.cuts, quantiser);
    let message = sum_level(
        &setup,
        &state.batches,
        &grower,
        plan.trees_from,
        &plan.trees,
    );
    if matches!(message, StepMessage::Histograms(_)) {
        state.grower = Some(grower.into_state());
        state.step = Step::Sent {
            round: plan.round,
            depth: 0,
        };
        state.setup = Some(setup);
    }
    Ok(message)
}

/// What a later stage's task received from the previous stage, merged as
/// it arrives.
#[derive(Debug)]
pub struct StageInputs {
    round: u32,
    depth: usize,
    merged: Option<Vec<GradPair>>,
    finished: Option<Tree>,
    missing: Option<u64>,
    count: usize,
}

impl StageInputs {
    /// No messages yet, for level `depth` of tree `round`.
    pub fn new(round: u32, depth: usize) -> Self {
        Self {
            round,
            depth,
            merged: None,
            finished: None,
            missing: None,
            count: 0,
        }
    }

    /// Messages received so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Adds one partition's message.
    pub fn add(&mut self, message: StepMessage) -> TrainResult<()> {
        let (round, depth) = (self.round, self.depth);
        self.count += 1;
        match message {
            StepMessage::Missing(rows) => {
                self.missing = Some(self.missing.unwrap_or(0).saturating_add(rows));
            }
            StepMessage::Finished(tree) => match &self.finished {
                Some(seen) if *seen != tree => {
                    return Err(bad(format!(
                        "partitions finished different trees in round {round}"
                    )));
                }
                _ => self.finished = Some(tree),
            },
            StepMessage::Histograms(hist) => match &mut self.merged {
                Some(sum) if sum.len() == hist.len() => hist::merge(sum, &hist),
                Some(sum) => {
                    return Err(bad(format!(
                        "histograms of {} and {} entries at level {depth} of round {round}",
                        sum.len(),
                        hist.len()
                    )));
                }
                None => self.merged = Some(hist),
            },
        }
        Ok(())
    }
}

/// A later stage of a tree job on partition `name`: merges the previous
/// level's histograms from every partition (`inputs`), grows the level and
/// sums the next one's histograms, or returns the finished tree. A missing
/// input, or a state not at the previous level, makes the answer
/// [`StepMessage::Missing`] (and drops what the partition kept of the tree).
pub fn continue_tree(run: &str, name: &str, inputs: StageInputs) -> TrainResult<StepMessage> {
    let (round, depth) = (inputs.round, inputs.depth);
    let Some(previous) = depth.checked_sub(1) else {
        return Err(bad(format!("round {round}: level 0 has no inputs")));
    };
    let held = held_partition(run, name);
    let forget = || {
        if let Some(partition) = &held
            && let Ok(mut state) = partition.lock()
        {
            state.step = Step::Idle;
            state.grower = None;
        }
    };
    if let Some(rows) = inputs.missing {
        forget();
        return Ok(StepMessage::Missing(rows));
    }
    let merged = match (inputs.finished, inputs.merged) {
        (Some(tree), None) => return Ok(StepMessage::Finished(tree)),
        (None, Some(merged)) => merged,
        _ => {
            return Err(bad(format!(
                "level {depth} of round {round} received no histograms, or histograms and trees"
            )));
        }
    };
    let Some(partition) = held else {
        return Ok(StepMessage::Missing(0));
    };
    let Ok(mut state) = partition.lock() else {
        return Ok(StepMessage::Missing(0));
    };
    let expected = Step::Sent {
        round,
        depth: previous,
    };
    let (Some(setup), Some(grower)) = (state.setup.clone(), state.grower.take()) else {
        return Ok(StepMessage::Missing(0));
    };
    if state.step != expected || setup.run != run {
        state.step = Step::Idle;
        return Ok(StepMessage::Missing(rows_of(&state.batches)));
    }
    state.step = Step::Idle;
    let mut grower = Grower::from_state(&setup.params, &setup.cuts, grower);
    grower.apply(&merged)?;
    if grower.pending().is_none() {
        return Ok(StepMessage::Finished(grower.finish()));
    }
    let message = sum_level(&setup, &state.batches, &grower, round, &[]);
    if matches!(message, StepMessage::Histograms(_)) {
        state.grower = Some(grower.into_state());
        state.step = Step::Sent { round, depth };
    }
    Ok(message)
}

/// Sums the histograms of `grower`'s pending nodes over `batches`, bringing
/// each to the round first (with finished trees `trees_from..`).
fn sum_level(
    setup: &RoundSetup,
    batches: &[SharedRows],
    grower: &Grower,
    trees_from: u32,
    trees: &[Tree],
) -> StepMessage {
    let Some(build) = grower.pending() else {
        return StepMessage::Finished(grower.tree().clone());
    };
    let features = setup.cuts.len();
    let plan = ResidentLevelPlan {
        run: setup.run.clone(),
        round: setup.round,
        start: setup.start,
        gradient: setup.gradient.clone(),
        level: LevelPlan {
            features,
            stride: grower.stride(),
            build: build.to_vec(),
            tree: grower.tree().clone(),
        },
        trees_from,
        trees: trees.to_vec(),
    };
    let shape = HistShape {
        slots: build.len(),
        features,
        stride: grower.stride(),
    };
    let mut slot_of_node = vec![NO_SLOT; plan.level.tree.nodes.len()];
    for (slot, node) in build.iter().enumerate() {
        slot_of_node[*node as usize] = slot as u32;
    }
    let mut hist = vec![GradPair::default(); shape.len()];
    for batch in batches {
        let added = batch.lock().is_ok_and(|mut rows| {
            rows.features() == features
                && rows.add_level(
                    &plan,
                    setup.objective,
                    setup.quantiser,
                    &slot_of_node,
                    &mut hist,
                    shape,
                )
        });
        if !added {
            return StepMessage::Missing(rows_of(batches));
        }
    }
    StepMessage::Histograms(hist)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::buffer::ScalarBuffer;

    use crate::training::distributed::resident_rows::ResidentRows;
    use crate::training::distributed::resident_rows::tests::random_numbers;
    use crate::training::gbdt::cuts::MISSING_BIN;

    const FEATURES: usize = 3;

    /// [`continue_tree`] with these messages from the previous stage.
    fn continue_with(
        run: &str,
        round: u32,
        depth: usize,
        name: &str,
        messages: Vec<StepMessage>,
    ) -> TrainResult<StepMessage> {
        let mut inputs = StageInputs::new(round, depth);
        for message in messages {
            inputs.add(message)?;
        }
        continue_tree(run, name, inputs)
    }
    const CUTS: usize = 7;

    /// A batch of `len` random rows (labels 0/1 leaning on feature 0,
    /// some missing bins) as read from the binned table.
    fn batch(id: i64, len: usize, next: &mut impl FnMut() -> u64) -> (BatchKeys, ResidentRows) {
        let mut bins: Vec<Vec<u16>> = vec![Vec::new(); FEATURES];
        let mut labels = Vec::new();
        for _ in 0..len {
            let row: Vec<u16> = (0..FEATURES)
                .map(|_| match next() % 10 {
                    0 => MISSING_BIN,
                    _ => (next() % (CUTS as u64 + 1)) as u16,
                })
                .collect();
            let lean = u64::from(row[0] != MISSING_BIN && row[0] > 3) * 3;
            labels.push(f64::from(u8::from(next() % 5 + lean >= 4)));
            for (f, bin) in row.into_iter().enumerate() {
                bins[f].push(bin);
            }
        }
        let keys = BatchKeys {
            first: (id, 0),
            last: (id, len as i64 - 1),
            len,
        };
        let rows = ResidentRows::new(
            0.0,
            ScalarBuffer::from(labels),
            bins.into_iter().map(ScalarBuffer::from).collect(),
            keys.last,
        );
        (keys, rows)
    }

    fn params() -> GbdtParams {
        GbdtParams {
            max_depth: 3,
            min_child_weight: 0.5,
            ..GbdtParams::default()
        }
    }

    fn cuts() -> Vec<Vec<f32>> {
        (0..FEATURES)
            .map(|f| (0..CUTS).map(|c| (c * 10 + f) as f32).collect())
            .collect()
    }

    fn plan(run: &str, round: u32, quantiser: Quantiser, trees: &[Tree]) -> TreeJobPlan {
        TreeJobPlan {
            run: run.to_string(),
            round,
            start: 0.0,
            gradient: GradientPlan {
                objective: Objective::BinaryLogistic.name().to_string(),
                quantiser,
            },
            params: TreeParams::of(&params()),
            cuts: cuts()
                .iter()
                .map(|c| c.iter().map(|v| v.to_bits()).collect())
                .collect(),
            trees_from: 0,
            trees: trees.to_vec(),
        }
    }

    /// The tree the driver grows with one level query per level, summing
    /// copies of the same rows.
    fn tree_by_levels(plan: &TreeJobPlan, rows: &mut [ResidentRows]) -> Tree {
        let (params, cuts) = (params(), cuts());
        let quantiser = plan.gradient.quantiser;
        let mut grower = Grower::new(&params, &cuts, quantiser);
        while let Some(build) = grower.pending() {
            let level = ResidentLevelPlan {
                run: plan.run.clone(),
                round: plan.round,
                start: plan.start,
                gradient: plan.gradient.clone(),
                level: LevelPlan {
                    features: FEATURES,
                    stride: grower.stride(),
                    build: build.to_vec(),
                    tree: grower.tree().clone(),
                },
                trees_from: 0,
                trees: plan.trees.clone(),
            };
            let shape = HistShape {
                slots: build.len(),
                features: FEATURES,
                stride: grower.stride(),
            };
            let mut slot_of_node = vec![NO_SLOT; grower.tree().nodes.len()];
            for (slot, node) in build.iter().enumerate() {
                slot_of_node[*node as usize] = slot as u32;
            }
            let mut hist = vec![GradPair::default(); shape.len()];
            for batch in rows.iter_mut() {
                assert!(batch.add_level(
                    &level,
                    Objective::BinaryLogistic,
                    quantiser,
                    &slot_of_node,
                    &mut hist,
                    shape,
                ));
            }
            grower.apply(&hist).unwrap();
        }
        grower.finish()
    }

    /// Runs a tree job's stages over `partitions` (by name), every message
    /// going to every partition as the shuffle sends it, and returns each
    /// partition's last message.
    fn tree_job(plan: &TreeJobPlan, partitions: &[&str]) -> Vec<StepMessage> {
        let mut messages: Vec<StepMessage> = partitions
            .iter()
            .map(|name| {
                let held = held_partition(&plan.run, name).unwrap();
                start_tree(plan, &held).unwrap()
            })
            .collect();
        for depth in 1..plan.stages() {
            messages = partitions
                .iter()
                .map(|name| {
                    // Through bytes, as between executors.
                    let inputs = messages
                        .iter()
                        .map(|m| StepMessage::from_bytes(&m.to_bytes().unwrap()).unwrap())
                        .collect();
                    continue_with(&plan.run, plan.round, depth, name, inputs).unwrap()
                })
                .collect();
        }
        messages
    }

    #[test]
    fn a_tree_job_grows_the_trees_level_queries_grow() {
        let run = "tree-step-test-same-trees";
        // Two partitions of two batches each (the last one short); the
        // level queries' copies are built from the same random stream.
        let sizes = [[300, 250], [300, 17]];
        let mut reference = Vec::new();
        let mut id = 100;
        let mut partitions = Vec::new();
        for sizes in sizes {
            let mut keys = Vec::new();
            for len in sizes {
                let (k, rows) = batch(id, len, &mut random_numbers(id as u64));
                reference.push(batch(id, len, &mut random_numbers(id as u64)).1);
                gbdt_resident::keep(run, k.first, rows);
                keys.push(k);
                id += 1;
            }
            partitions.push(keys);
        }
        for (p, keys) in partitions.iter().enumerate() {
            assert!(partition_from_keys(run, &format!("p{p}"), keys).is_some());
        }
        let quantiser = Quantiser::for_rows(FUNCTION, 867, 1.0).unwrap();
        let mut trees: Vec<Tree> = Vec::new();
        for round in 0..3u32 {
            let plan = plan(run, round, quantiser, &trees);
            let expected = tree_by_levels(&plan, &mut reference);
            assert!(expected.nodes.len() > 3, "the tree splits: {expected:?}");
            for message in tree_job(&plan, &["p0", "p1"]) {
                assert_eq!(message, StepMessage::Finished(expected.clone()));
            }
            trees.push(expected);
        }
        gbdt_resident::release(run);
    }

    #[test]
    fn rows_of_a_tree_job_cut_short_grow_the_same_tree_by_levels() {
        // A tree job can stop part way (a later stage's task ran where its
        // partition is not held); the driver then grows that tree with
        // level queries over the same kept rows, whose nodes the job has
        // already moved down the tree.
        let run = "tree-step-test-cut-short";
        let mut keys = Vec::new();
        let mut reference = Vec::new();
        for (id, len) in [(300, 400), (301, 123)] {
            let (k, rows) = batch(id, len, &mut random_numbers(id as u64));
            reference.push(batch(id, len, &mut random_numbers(id as u64)).1);
            gbdt_resident::keep(run, k.first, rows);
            keys.push(k);
        }
        let held = partition_from_keys(run, "p0", &keys).unwrap();
        let quantiser = Quantiser::for_rows(FUNCTION, 523, 1.0).unwrap();
        let mut trees: Vec<Tree> = Vec::new();
        for round in 0..2u32 {
            let plan = plan(run, round, quantiser, &trees);
            let expected = tree_by_levels(&plan, &mut reference);
            // Two of the job's four stages.
            let mut message = start_tree(&plan, &held).unwrap();
            message = continue_with(run, round, 1, "p0", vec![message]).unwrap();
            assert!(matches!(message, StepMessage::Histograms(_)));
            let batches: Vec<SharedRows> = keys
                .iter()
                .map(|k| gbdt_resident::find(run, k.first).unwrap())
                .collect();
            let mut guards: Vec<_> = batches.iter().map(|b| b.lock().unwrap()).collect();
            let mut rows: Vec<ResidentRows> = Vec::new();
            // The kept rows themselves, grown by levels.
            for guard in guards.iter_mut() {
                rows.push(std::mem::replace(
                    &mut **guard,
                    ResidentRows::new(0.0, ScalarBuffer::from(vec![]), vec![], (0, 0)),
                ));
            }
            let by_levels = tree_by_levels(&plan, &mut rows);
            for (guard, rows) in guards.iter_mut().zip(rows) {
                **guard = rows;
            }
            assert_eq!(by_levels, expected, "round {round}");
            trees.push(expected);
        }
        // And the next tree job over those rows grows the next tree.
        let plan = plan(run, 2, quantiser, &trees);
        let expected = tree_by_levels(&plan, &mut reference);
        assert_eq!(
            tree_job(&plan, &["p0"]),
            vec![StepMessage::Finished(expected)]
        );
        gbdt_resident::release(run);
    }

    #[test]
    fn partitions_not_held_where_the_task_runs_are_missing() {
        let run = "tree-step-test-missing";
        let mut next = random_numbers(5);
        let (keys, rows) = batch(7, 50, &mut next);
        // A batch not kept: the partition cannot be made.
        assert!(partition_from_keys(run, "p0", &[keys]).is_none());
        // A partition whose batch is replaced (rebuilt by a level query) is
        // dropped; others, and batches kept anew, leave partitions alone.
        let (other, other_rows) = batch(8, 20, &mut next);
        gbdt_resident::keep(run, other.first, other_rows);
        assert!(partition_from_keys(run, "p9", &[other]).is_some());
        let (new, new_rows) = batch(9, 20, &mut next);
        gbdt_resident::keep(run, new.first, new_rows);
        assert!(held_partition(run, "p9").is_some());
        gbdt_resident::keep(run, other.first, batch(8, 20, &mut next).1);
        assert!(held_partition(run, "p9").is_none());
        gbdt_resident::keep(run, keys.first, rows);
        let wrong_length = BatchKeys { len: 49, ..keys };
        assert!(partition_from_keys(run, "p0", &[wrong_length]).is_none());
        assert!(partition_from_keys(run, "p0", &[keys]).is_some());
        let quantiser = Quantiser::for_rows(FUNCTION, 50, 1.0).unwrap();
        let plan = plan(run, 0, quantiser, &[]);
        let held = held_partition(run, "p0").unwrap();
        let StepMessage::Histograms(hist) = start_tree(&plan, &held).unwrap() else {
            panic!("the root's histograms");
        };
        let inputs = || vec![StepMessage::Histograms(hist.clone())];
        // Another partition's name, or a level the partition is not at.
        assert_eq!(
            continue_with(run, 0, 1, "p1", inputs()).unwrap(),
            StepMessage::Missing(0)
        );
        assert_eq!(
            continue_with(run, 0, 2, "p0", inputs()).unwrap(),
            StepMessage::Missing(50)
        );
        // A missing input makes the level missing, rows counted.
        let with_missing = vec![StepMessage::Missing(7), StepMessage::Missing(5)];
        assert_eq!(
            continue_with(run, 0, 1, "p0", with_missing).unwrap(),
            StepMessage::Missing(12)
        );
        // Rows that missed a finished tree the plan does not carry.
        let later = TreeJobPlan {
            round: 1,
            trees_from: 1,
            ..plan.clone()
        };
        assert_eq!(start_tree(&later, &held).unwrap(), StepMessage::Missing(50));
        gbdt_resident::release(run);
    }

    #[test]
    fn messages_round_trip_and_bad_ones_are_errors() {
        let mut tree = Grower::new(
            &params(),
            &cuts(),
            Quantiser::for_rows(FUNCTION, 1, 1.0).unwrap(),
        )
        .tree()
        .clone();
        tree.nodes[0].gain = 1.5;
        tree.nodes[0].hess = 2.25;
        tree.nodes[0].split_value = 0.1;
        for message in [
            StepMessage::Histograms(vec![GradPair { g: -3, h: 9 }; 5]),
            StepMessage::Finished(tree),
            StepMessage::Missing(42),
        ] {
            assert_eq!(
                StepMessage::from_bytes(&message.to_bytes().unwrap()).unwrap(),
                message
            );
        }
        for bad in [&b""[..], b"H123", b"M1", b"T{}", b"X"] {
            let err = StepMessage::from_bytes(bad).unwrap_err().to_string();
            assert!(err.contains("train_gbdt"), "{err}");
        }
        let mismatched = continue_with(
            "tree-step-test-bad",
            0,
            1,
            "p0",
            vec![
                StepMessage::Histograms(vec![GradPair::default(); 4]),
                StepMessage::Histograms(vec![GradPair::default(); 5]),
            ],
        );
        assert!(
            mismatched
                .unwrap_err()
                .to_string()
                .contains("4 and 5 entries")
        );
    }

    #[test]
    fn bad_plans_are_errors() {
        let quantiser = Quantiser::for_rows(FUNCTION, 10, 1.0).unwrap();
        let good = plan("r", 0, quantiser, &[]);
        assert!(TreeJobPlan::parse(&serde_json::to_string(&good).unwrap()).is_ok());
        let deep = TreeJobPlan {
            params: TreeParams {
                max_depth: MAX_DEPTH + 1,
                ..good.params.clone()
            },
            ..good.clone()
        };
        let trees = TreeJobPlan {
            round: 2,
            ..good.clone()
        };
        let no_run = TreeJobPlan {
            run: String::new(),
            ..good.clone()
        };
        for (bad, says) in [
            (deep, "depth 13"),
            (trees, "trees 0..0 for round 2"),
            (no_run, "no run"),
        ] {
            let err = TreeJobPlan::parse(&serde_json::to_string(&bad).unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{err}");
        }
        assert!(TreeJobPlan::parse("{").is_err());
    }
}
