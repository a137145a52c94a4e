//! The rows of distributed GBDT runs, kept in the process that read them.
//!
//! Why: a tree level asks the same question of the same rows as the level
//! before, with one more split. Answering it from the binned Parquet copy
//! meant decoding every bin column again at every level (about 40% of a
//! level's time on a cluster), walking every row from the root, and writing
//! a new copy with new margins after every tree. Instead, the first level
//! query that reads a batch of binned rows keeps it here — its bins (row by
//! row) and label, plus each row's margin, the round's gradient pair and its node in
//! the tree being grown ([`ResidentRows`]) — keyed by the training run and
//! the batch's first row key. Later level queries read only the row keys,
//! find their batches here and bring them up to date.
//!
//! A tree job ([`super::gbdt_tree_step`]) finds a whole partition's batches
//! here by the partition's name, with what it keeps of the tree being grown
//! between its stages; that state belongs to the run and is dropped with it.
//!
//! A batch this process does not hold — another executor read that
//! partition before, the entry was evicted, or the executor restarted — is
//! counted as missing; the driver then runs the level again with every
//! column and every finished tree, which rebuilds just the batches not held.
//! The arithmetic is the same either way (margins add the trees in order;
//! histograms are integer sums), so where rows are held never changes the
//! model.
//!
//! Memory: the bins and label as read plus 28 bytes per row, counted against
//! the process's budget ([`budget_bytes`]); a tree job's partition adds the
//! histograms of one tree level between its stages (not counted: a few MB
//! for 20 features at depth 6), kept until its next tree job or the run's
//! release.
//! A run's rows are dropped when the
//! driver releases the run ([`release`]); at the next level query of another
//! run after this one has been idle here for [`IDLE_RUN_EXPIRY`]; or when
//! another run needs the room and this one has not been used here for
//! [`EVICTABLE_AFTER`] (a run whose levels reach this process less often
//! than that can lose its rows this way, and rebuilds them). Copies of
//! partitions that moved to another executor stay until then too. A batch that
//! does not fit is not kept: the run still trains the same model, but every
//! level re-reads that batch and replays every finished tree over it, which
//! grows with the square of the rounds — give executors enough memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use crate::training::distributed::gbdt_tree_step::PartitionState;
pub use crate::training::distributed::resident_rows::{ResidentRows, RowKey};

/// How much memory one process may hold for resident training rows, unless
/// set otherwise ([`set_budget_bytes`]; the executor's `--training-rows-memory`).
pub const DEFAULT_BUDGET_BYTES: usize = 4 << 30;

static BUDGET: AtomicUsize = AtomicUsize::new(DEFAULT_BUDGET_BYTES);

/// A run not touched for this long is dropped the next time the store is used.
pub const IDLE_RUN_EXPIRY: Duration = Duration::from_secs(30 * 60);

/// A run not touched for this long may be evicted to make room for another.
pub const EVICTABLE_AFTER: Duration = Duration::from_secs(60);

/// A batch shared between the store and the query using it.
pub type SharedRows = Arc<Mutex<ResidentRows>>;

/// A partition's state in tree jobs, shared between the store and the task using it.
pub type SharedPartition = Arc<Mutex<PartitionState>>;

#[derive(Debug, Default)]
struct Run {
    /// Each batch with the bytes it was counted as.
    batches: HashMap<RowKey, (SharedRows, usize)>,
    /// Tree jobs' partitions (`gbdt_tree_step`), by the partition's name.
    /// They share batches with `batches` (listed by first row key), are
    /// dropped with the run and when one of their batches is replaced; their
    /// histograms between tasks are not counted in `bytes`.
    partitions: HashMap<String, (Vec<RowKey>, SharedPartition)>,
    bytes: usize,
    last_used: Option<Instant>,
}

#[derive(Debug, Default)]
struct Store {
    runs: HashMap<String, Run>,
    bytes: usize,
    /// Runs already warned about exceeding the budget (warned once each),
    /// with when; forgotten after [`IDLE_RUN_EXPIRY`].
    over_budget: HashMap<String, Instant>,
}

static STORE: LazyLock<Mutex<Store>> = LazyLock::new(|| Mutex::new(Store::default()));

fn store() -> MutexGuard<'static, Store> {
    // No code panics while holding the store's lock (no batch is locked
    // under it), so a poisoned lock still guards consistent maps.
    STORE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
    /// Drops runs (other than `current`) idle for [`IDLE_RUN_EXPIRY`].
    fn expire_idle(&mut self, current: &str, now: Instant) {
        self.over_budget
            .retain(|_, warned| now.saturating_duration_since(*warned) <= IDLE_RUN_EXPIRY);
        let idle: Vec<String> = self
            .runs
            .iter()
            .filter(|(name, run)| name.as_str() != current && idle_for(run, now) > IDLE_RUN_EXPIRY)
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

    fn find(&mut self, run: &str, first_key: RowKey, now: Instant) -> Option<SharedRows> {
        self.expire_idle(run, now);
        let entry = self.runs.get_mut(run)?;
        entry.last_used = Some(now);
        entry
            .batches
            .get(&first_key)
            .map(|(rows, _)| Arc::clone(rows))
    }

    /// Keeps `rows` (counted as `bytes`) as the batch of `run` at
    /// `first_key`, replacing any held before; false if it does not fit.
    fn keep(
        &mut self,
        run: &str,
        first_key: RowKey,
        rows: &SharedRows,
        bytes: usize,
        budget: usize,
        now: Instant,
    ) -> bool {
        self.expire_idle(run, now);
        if let Some(entry) = self.runs.get_mut(run)
            && let Some((_, old)) = entry.batches.remove(&first_key)
        {
            entry.bytes -= old;
            self.bytes -= old;
            // A tree job's partition holding the replaced batch is stale;
            // the next job makes it again from the row keys.
            entry
                .partitions
                .retain(|_, (keys, _)| !keys.contains(&first_key));
        }
        if !self.make_room(run, bytes, budget, now) {
            return false;
        }
        let entry = self.runs.entry(run.to_string()).or_default();
        entry.batches.insert(first_key, (Arc::clone(rows), bytes));
        entry.bytes += bytes;
        entry.last_used = Some(now);
        self.bytes += bytes;
        true
    }

    /// Evicts the least recently used runs other than `keep` that have been
    /// idle for [`EVICTABLE_AFTER`] until `needed` more bytes fit the
    /// budget; false if they still do not (nothing is evicted in vain when
    /// `needed` alone exceeds the budget).
    fn make_room(&mut self, keep: &str, needed: usize, budget: usize, now: Instant) -> bool {
        let evictable = |name: &String, run: &Run| {
            name.as_str() != keep && idle_for(run, now) >= EVICTABLE_AFTER
        };
        let freeable: usize = self
            .runs
            .iter()
            .filter(|(name, run)| evictable(name, run))
            .map(|(_, run)| run.bytes)
            .sum();
        if self.bytes.saturating_sub(freeable) + needed > budget {
            return false;
        }
        while self.bytes + needed > budget {
            let oldest = self
                .runs
                .iter()
                .filter(|(name, run)| evictable(name, run))
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

fn idle_for(run: &Run, now: Instant) -> Duration {
    run.last_used
        .map(|used| now.saturating_duration_since(used))
        .unwrap_or(Duration::MAX)
}

/// The batch of `run` whose first row key is `first_key`, if this process holds it.
pub fn find(run: &str, first_key: RowKey) -> Option<SharedRows> {
    store().find(run, first_key, Instant::now())
}

/// Keeps `rows` as the batch of `run` starting at `first_key` (replacing
/// any held before) and returns it shared. Over the budget, the rows are
/// returned without being kept: the query still uses them, and the next
/// level finds them missing.
pub fn keep(run: &str, first_key: RowKey, rows: ResidentRows) -> SharedRows {
    let bytes = rows.bytes();
    let shared = Arc::new(Mutex::new(rows));
    let budget = budget_bytes();
    let mut store = store();
    let now = Instant::now();
    if !store.keep(run, first_key, &shared, bytes, budget, now)
        && store.over_budget.insert(run.to_string(), now).is_none()
    {
        tracing::warn!(
            "training run {run}: its rows exceed this process's budget of {budget} bytes for \
             training rows (executor flag --training-rows-memory); levels will re-read them"
        );
    }
    shared
}

/// The tree-job partition `name` of `run`, if this process holds it.
pub fn find_partition(run: &str, name: &str) -> Option<SharedPartition> {
    let mut store = store();
    let now = Instant::now();
    store.expire_idle(run, now);
    let entry = store.runs.get_mut(run)?;
    entry.last_used = Some(now);
    entry.partitions.get(name).map(|(_, p)| Arc::clone(p))
}

/// Keeps `state` as the tree-job partition `name` of `run` (replacing any
/// held before) and returns it shared.
pub fn keep_partition(
    run: &str,
    name: &str,
    batches: Vec<RowKey>,
    state: PartitionState,
) -> SharedPartition {
    let shared = Arc::new(Mutex::new(state));
    let mut store = store();
    // A run evicted meanwhile is not recreated: the partition is used by
    // the task that made it and made again by the next one.
    if let Some(entry) = store.runs.get_mut(run) {
        entry.last_used = Some(Instant::now());
        entry
            .partitions
            .insert(name.to_string(), (batches, Arc::clone(&shared)));
    }
    shared
}

/// Forgets the tree-job partition `name` of `run` (its batches stay).
pub fn forget_partition(run: &str, name: &str) {
    if let Some(entry) = store().runs.get_mut(run) {
        entry.partitions.remove(name);
    }
}

/// Drops every batch and tree-job partition of `run` held by this process;
/// returns how many batches.
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
    use arrow::buffer::ScalarBuffer;

    /// A moment an hour ahead, so that subtracting ages never underflows.
    fn later() -> Instant {
        Instant::now() + Duration::from_secs(3600)
    }

    fn rows(len: usize) -> SharedRows {
        let label = ScalarBuffer::from(vec![0.0; len]);
        let bins = vec![ScalarBuffer::from(vec![0u16; len])];
        Arc::new(Mutex::new(ResidentRows::new(0.0, label, bins, (1, 0))))
    }

    fn run(bytes: usize, age: Duration, now: Instant) -> Run {
        Run {
            batches: HashMap::new(),
            partitions: HashMap::new(),
            bytes,
            last_used: Some(now - age),
        }
    }

    #[test]
    fn room_is_made_only_from_other_runs_idle_long_enough() {
        let now = later();
        let mut store = Store::default();
        for (name, bytes, age) in [
            ("idle", 40, 120),
            ("idler", 40, 600),
            ("busy", 10, 1),
            ("current", 10, 0),
        ] {
            store
                .runs
                .insert(name.into(), run(bytes, Duration::from_secs(age), now));
            store.bytes += bytes;
        }
        // Evicting every idle run would not make room: nothing is evicted.
        assert!(!store.make_room("current", 95, 100, now));
        assert_eq!((store.runs.len(), store.bytes), (4, 100));
        assert!(store.make_room("current", 40, 100, now));
        assert!(store.runs.contains_key("idle") && !store.runs.contains_key("idler"));
        assert_eq!(store.bytes, 60);
        // Nothing is evicted for a batch larger than the whole budget.
        assert!(!store.make_room("current", 101, 100, now));
        assert_eq!(store.runs.len(), 3);
        assert!(store.make_room("current", 80, 100, now));
        assert_eq!(store.bytes, 20);
        // A busy run is never evicted, nor the current one.
        assert!(!store.make_room("current", 90, 100, now));
        assert_eq!(store.runs.len(), 2);
    }

    #[test]
    fn replacing_a_batch_counts_its_bytes_once() {
        let now = later();
        let mut store = Store::default();
        let key = (7, 0);
        assert!(store.keep("r", key, &rows(4), 100, 1000, now));
        assert!(store.keep("r", key, &rows(4), 150, 1000, now));
        assert!(store.keep("r", (7, 4), &rows(4), 200, 1000, now));
        assert_eq!((store.bytes, store.runs["r"].bytes), (350, 350));
        // Too big for the budget: not kept, and the old copy is gone.
        assert!(!store.keep("r", key, &rows(4), 2000, 1000, now));
        assert_eq!((store.bytes, store.runs["r"].batches.len()), (200, 1));
        assert!(store.find("r", key, now).is_none());
        assert!(store.find("r", (7, 4), now).is_some());
        assert_eq!(store.remove("r"), 1);
        assert_eq!(store.bytes, 0);
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
        store.expire_idle("busy", now);
        assert_eq!(store.runs.keys().collect::<Vec<_>>(), ["busy"]);
        assert_eq!(store.bytes, 8);
    }
}
