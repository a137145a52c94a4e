//! The rows of a distributed GBDT run, kept in the process that read them.
//!
//! Why: a tree level asks the same question of the same rows as the level
//! before, with one more split. Answering it from the binned Parquet copy
//! meant decoding every bin column again at every level (about 40% of a
//! level's time on a cluster), walking every row from the root, and writing
//! a new copy with new margins after every tree. Instead, the first level
//! query that reads a batch of binned rows keeps it here — bins and label as
//! read, plus each row's margin, the round's gradient pair and its node in
//! the tree being grown — keyed by the training run and the batch's first
//! row key. Later level queries read only the row-key column, find their
//! batches here and bring them up to date: add the trees finished since
//! (the plan carries the last few), recompute gradients once per round, and
//! move each row down the one level the tree grew.
//!
//! A batch this process does not hold — another executor read that
//! partition before, the entry was evicted, or the executor restarted — is
//! counted as missing; the driver then runs the level again with every
//! column and every finished tree, which rebuilds the batch from the binned
//! table. The arithmetic is the same either way (margins add the trees in
//! order; histograms are integer sums), so where rows are held never changes
//! the model.
//!
//! Memory: 28 bytes per row beyond the bins and label, held until the
//! driver releases the run ([`release`]), the run is idle for
//! [`IDLE_RUN_EXPIRY`], or the process's budget ([`budget_bytes`]) needs the
//! room for a newer run. A run larger than the budget still trains: the
//! batches that do not fit are re-read at every level.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arrow::buffer::ScalarBuffer;

use crate::training::gbdt::grad::{GradPair, Quantiser};
use crate::training::gbdt::hist::{NO_SLOT, SelectedRows};
use crate::training::gbdt::messages::ResidentLevelPlan;
use crate::training::gbdt::tree::Tree;
use crate::training::params::Objective;

/// How much memory one process may hold for resident training rows, unless
/// set otherwise ([`set_budget_bytes`]; the executor's `--training-rows-memory`).
pub const DEFAULT_BUDGET_BYTES: usize = 4 << 30;

static BUDGET: AtomicUsize = AtomicUsize::new(DEFAULT_BUDGET_BYTES);
/// A run not touched for this long is dropped at the next access.
pub const IDLE_RUN_EXPIRY: Duration = Duration::from_secs(30 * 60);

/// One batch of a run's binned rows and its training state.
#[derive(Debug)]
pub struct ResidentRows {
    bins: Vec<ScalarBuffer<u16>>,
    label: ScalarBuffer<f64>,
    last_key: i64,
    margin: Vec<f64>,
    trees_applied: u32,
    gradient: Vec<GradPair>,
    gradient_round: Option<u32>,
    position: Vec<u32>,
    position_round: Option<u32>,
}

impl ResidentRows {
    /// A batch read from the binned table, before any tree: every margin is `start`.
    pub fn new(
        start: f64,
        label: ScalarBuffer<f64>,
        bins: Vec<ScalarBuffer<u16>>,
        last_key: i64,
    ) -> Self {
        let len = label.len();
        Self {
            bins,
            label,
            last_key,
            margin: vec![start; len],
            trees_applied: 0,
            gradient: Vec::new(),
            gradient_round: None,
            position: Vec::new(),
            position_round: None,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.label.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether these are the rows of a batch of `len` rows ending with `last_key`.
    pub fn matches(&self, len: usize, last_key: i64) -> bool {
        self.len() == len && self.last_key == last_key
    }

    /// Memory held once the batch has gradients and positions.
    pub fn bytes(&self) -> usize {
        let per_row = 2 * self.bins.len()
            + std::mem::size_of::<f64>() * 2
            + std::mem::size_of::<GradPair>()
            + std::mem::size_of::<u32>();
        self.len() * per_row + std::mem::size_of::<Self>()
    }

    /// The bin columns.
    pub fn bins(&self) -> Vec<&[u16]> {
        self.bins.iter().map(|b| b.as_ref()).collect()
    }

    /// Brings the batch to the plan's round and tree: adds the trees finished
    /// since its margins were last updated, computes the round's gradients
    /// once, and moves every row to its node in the tree so far. Returns
    /// false, changing nothing, when the plan lacks a tree the batch needs.
    pub fn prepare(
        &mut self,
        plan: &ResidentLevelPlan,
        objective: Objective,
        quantiser: Quantiser,
    ) -> bool {
        if self.trees_applied > plan.round || self.trees_applied < plan.trees_from {
            return false;
        }
        let first_missing = (self.trees_applied - plan.trees_from) as usize;
        for tree in &plan.trees[first_missing..] {
            // Rows placed in this very tree by its last level query are
            // one step from their leaf.
            let placed = self.position_round == Some(self.trees_applied);
            self.add_tree(tree, placed);
            self.trees_applied += 1;
        }
        if self.gradient_round != Some(plan.round) {
            self.gradient.clear();
            self.gradient.extend(
                self.label
                    .iter()
                    .zip(&self.margin)
                    .map(|(y, m)| quantiser.row_gradient(objective, *m, *y)),
            );
            self.gradient_round = Some(plan.round);
        }
        if self.position_round != Some(plan.round) {
            self.position.clear();
            self.position.resize(self.len(), 0);
            self.position_round = Some(plan.round);
        }
        self.descend(&plan.level.tree);
        true
    }

    /// Adds a finished tree's output to every row's margin, as the driver's
    /// model adds it: in tree order, in `f64`. With `placed`, each row's
    /// position is a node of this tree on its path, and the walk starts there.
    fn add_tree(&mut self, tree: &Tree, placed: bool) {
        let bins: Vec<&[u16]> = self.bins.iter().map(|b| b.as_ref()).collect();
        let nodes = tree.nodes.len();
        for (r, margin) in self.margin.iter_mut().enumerate() {
            let from = match self.position.get(r) {
                Some(p) if placed && (*p as usize) < nodes => *p as usize,
                _ => 0,
            };
            *margin += tree.nodes[tree.leaf_from(from, |f| bins[f][r])].value;
        }
    }

    /// Moves every row from its node down to the leaf it reaches now.
    fn descend(&mut self, tree: &Tree) {
        let bins: Vec<&[u16]> = self.bins.iter().map(|b| b.as_ref()).collect();
        let nodes = tree.nodes.len();
        for (r, position) in self.position.iter_mut().enumerate() {
            // Positions always come from an earlier state of this tree; the
            // bound only keeps a wrong one from indexing out of range.
            let from = if (*position as usize) < nodes {
                *position as usize
            } else {
                0
            };
            *position = tree.leaf_from(from, |f| bins[f][r]) as u32;
        }
    }

    /// Selects the rows whose node has a slot, with their gradient pairs.
    pub fn select(&self, slot_of_node: &[u32], selected: &mut SelectedRows) {
        selected.clear();
        for (r, (node, pair)) in self.position.iter().zip(&self.gradient).enumerate() {
            let slot = slot_of_node.get(*node as usize).copied().unwrap_or(NO_SLOT);
            if slot != NO_SLOT {
                selected.push(r, slot, *pair);
            }
        }
    }
}

/// A batch shared between the store and the query using it.
pub type SharedRows = Arc<Mutex<ResidentRows>>;

#[derive(Debug)]
struct Run {
    batches: HashMap<i64, SharedRows>,
    bytes: usize,
    last_used: Instant,
}

#[derive(Debug, Default)]
struct Store {
    runs: HashMap<String, Run>,
    bytes: usize,
    /// Runs already warned about exceeding the budget (warned once each).
    over_budget: HashSet<String>,
}

static STORE: LazyLock<Mutex<Store>> = LazyLock::new(|| Mutex::new(Store::default()));

fn store() -> MutexGuard<'static, Store> {
    // The store's maps stay consistent even if a holder panicked: every
    // change is a single insert or remove.
    STORE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The memory this process may hold for resident training rows.
pub fn budget_bytes() -> usize {
    BUDGET.load(Ordering::Relaxed)
}

/// Sets [`budget_bytes`] for this process; `0` keeps no rows, so every
/// level re-reads the binned table.
pub fn set_budget_bytes(bytes: usize) {
    BUDGET.store(bytes, Ordering::Relaxed);
}

impl Store {
    fn expire_idle(&mut self, now: Instant) {
        let idle: Vec<String> = self
            .runs
            .iter()
            .filter(|(_, run)| now.duration_since(run.last_used) > IDLE_RUN_EXPIRY)
            .map(|(name, _)| name.clone())
            .collect();
        for name in idle {
            self.remove(&name);
        }
    }

    fn remove(&mut self, run: &str) -> usize {
        self.over_budget.remove(run);
        match self.runs.remove(run) {
            Some(dropped) => {
                self.bytes -= dropped.bytes;
                dropped.batches.len()
            }
            None => 0,
        }
    }

    /// Evicts the least recently used runs other than `keep` until `needed`
    /// more bytes fit the budget; false if they still do not.
    fn make_room(&mut self, keep: &str, needed: usize, budget: usize) -> bool {
        while self.bytes + needed > budget {
            let oldest = self
                .runs
                .iter()
                .filter(|(name, _)| name.as_str() != keep)
                .min_by_key(|(_, run)| run.last_used)
                .map(|(name, _)| name.clone());
            match oldest {
                Some(name) => {
                    self.remove(&name);
                }
                None => return false,
            }
        }
        true
    }
}

/// The batch of `run` whose first row key is `first_key`, if this process holds it.
pub fn find(run: &str, first_key: i64) -> Option<SharedRows> {
    let now = Instant::now();
    let mut store = store();
    store.expire_idle(now);
    let entry = store.runs.get_mut(run)?;
    entry.last_used = now;
    entry.batches.get(&first_key).cloned()
}

/// Keeps `rows` as the batch of `run` starting at `first_key` (replacing
/// any held before) and returns it shared. Over the budget, the rows are
/// returned without being kept: the query still uses them, and the next
/// level finds them missing.
pub fn keep(run: &str, first_key: i64, rows: ResidentRows) -> SharedRows {
    let bytes = rows.bytes();
    let shared = Arc::new(Mutex::new(rows));
    let now = Instant::now();
    let mut store = store();
    store.expire_idle(now);
    let replaced = store
        .runs
        .get_mut(run)
        .and_then(|entry| entry.batches.remove(&first_key))
        .map(|old| old.lock().map(|rows| rows.bytes()).unwrap_or(0))
        .unwrap_or(0);
    if let Some(entry) = store.runs.get_mut(run) {
        entry.bytes -= replaced;
    }
    store.bytes -= replaced;
    if !store.make_room(run, bytes, budget_bytes()) {
        if store.over_budget.insert(run.to_string()) {
            tracing::warn!(
            "training run {run}: its rows exceed this process's budget of {} bytes for \
             training rows (executor flag --training-rows-memory); levels will re-read them",
                budget_bytes()
            );
        }
        return shared;
    }
    let entry = store.runs.entry(run.to_string()).or_insert_with(|| Run {
        batches: HashMap::new(),
        bytes: 0,
        last_used: now,
    });
    entry.batches.insert(first_key, Arc::clone(&shared));
    entry.bytes += bytes;
    entry.last_used = now;
    store.bytes += bytes;
    shared
}

/// Drops every batch of `run` held by this process; returns how many.
pub fn release(run: &str) -> usize {
    store().remove(run)
}

/// Batches and bytes this process holds for `run`.
pub fn held(run: &str) -> (usize, usize) {
    store()
        .runs
        .get(run)
        .map(|entry| (entry.batches.len(), entry.bytes))
        .unwrap_or((0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A moment an hour ahead, so that subtracting ages never underflows.
    fn later() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    fn run(bytes: usize, age: Duration, now: Instant) -> Run {
        Run {
            batches: HashMap::new(),
            bytes,
            last_used: now - age,
        }
    }

    #[test]
    fn room_is_made_from_the_least_recently_used_other_runs() {
        let now = later();
        let mut store = Store::default();
        for (name, bytes, age) in [("old", 40, 30), ("older", 40, 60), ("current", 10, 0)] {
            store
                .runs
                .insert(name.into(), run(bytes, Duration::from_secs(age), now));
            store.bytes += bytes;
        }
        assert!(store.make_room("current", 40, 100));
        assert!(store.runs.contains_key("old") && !store.runs.contains_key("older"));
        assert_eq!(store.bytes, 50);
        // Only the current run is left to evict, and it is never evicted.
        assert!(!store.make_room("current", 200, 100));
        assert_eq!(store.runs.len(), 1);
    }

    #[test]
    fn idle_runs_expire() {
        let now = later();
        let mut store = Store::default();
        store.runs.insert(
            "idle".into(),
            run(8, IDLE_RUN_EXPIRY + Duration::from_secs(1), now),
        );
        store
            .runs
            .insert("busy".into(), run(8, Duration::from_secs(1), now));
        store.bytes = 16;
        store.expire_idle(now);
        assert_eq!(store.runs.keys().collect::<Vec<_>>(), ["busy"]);
        assert_eq!(store.bytes, 8);
    }
}
