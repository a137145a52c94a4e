//! Distributed gradient boosting: sketch, bin, then one histogram query per
//! tree level, answered from rows each process keeps between levels.

use datafusion::common::ScalarValue;
use ember_udfs::training::distributed::gbdt_tree_step::{TreeJobPlan, TreeParams};
use ember_udfs::training::exact_float::f32s_to_json;
use ember_udfs::training::gbdt::cuts::cuts_from_sketch;
use ember_udfs::training::gbdt::grad::{
    GradPair, Quantiser, base_margin, base_score, gradient_bound,
};
use ember_udfs::training::gbdt::messages::{
    GradientPlan, LevelPlan, ResidentLevelPlan, SketchState, level_result_from_bytes,
};
use ember_udfs::training::gbdt::model::GbdtModel;
use ember_udfs::training::gbdt::tree::{Grower, Tree, check_histogram_budget};
use ember_udfs::training::params::{GbdtParams, Objective};

use crate::error::{JobsError, Result};
use crate::train::{TrainEngine, TrainProgress, quote_ident, quote_literal};

const FUNCTION: &str = "train_gbdt";

fn binary(value: ScalarValue, what: &str) -> Result<Vec<u8>> {
    match value {
        ScalarValue::Binary(Some(bytes)) | ScalarValue::LargeBinary(Some(bytes)) => Ok(bytes),
        other => Err(JobsError::Usage(format!(
            "internal: {what} returned {other:?}"
        ))),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| JobsError::Usage(format!("internal: {e}")))
}

/// Trains one GBDT model over `table` (label and feature columns by name).
pub async fn train_gbdt(
    engine: &TrainEngine,
    table: &str,
    label: &str,
    features: &[String],
    params: &GbdtParams,
    progress: &(dyn Fn(TrainProgress) + Sync),
) -> Result<GbdtModel> {
    let label_sql = quote_ident(label);
    let feature_sql: Vec<String> = features.iter().map(|f| quote_ident(f)).collect();
    let bins: Vec<String> = (0..features.len()).map(|i| format!("b{i}")).collect();
    let bin_list = bins.join(", ");

    // 1. Label statistics and value sketches, merged over all partitions.
    let sketch_sql = format!(
        "SELECT __ember_gbdt_sketch({label_sql}, {}) FROM {}",
        feature_sql.join(", "),
        quote_ident(table)
    );
    let state = SketchState::from_bytes(
        FUNCTION,
        &binary(engine.single_value(&sketch_sql).await?, "the sketch")?,
    )?;
    let objective = state.labels.objective(FUNCTION, label, params.objective)?;
    let cuts: Vec<Vec<f32>> = state
        .features
        .iter()
        .map(|s| cuts_from_sketch(s, params.max_bins))
        .collect();
    check_histogram_budget(FUNCTION, params, &cuts)?;
    let base = base_score(objective, state.labels.mean());
    progress(TrainProgress::Pass("sketch"));

    // 2. The binned table: a row key, the label and one bin per feature.
    let mut columns = vec![
        "__ember_gbdt_row_key() AS __key".to_string(),
        format!("CAST({label_sql} AS DOUBLE) AS __label"),
    ];
    for ((feature, cut), bin) in feature_sql.iter().zip(&cuts).zip(&bins) {
        columns.push(format!(
            "__ember_gbdt_bin({}, {feature}) AS {bin}",
            quote_literal(&f32s_to_json(cut))
        ));
    }
    let select = format!(
        "SELECT {} FROM {} WHERE {label_sql} IS NOT NULL",
        columns.join(", "),
        quote_ident(table)
    );
    engine.materialize(BINNED, &select).await?;
    progress(TrainProgress::Pass("bin"));

    // 3. Boosting, then the rows kept for the run are released whatever
    //    the outcome.
    let boosting = Boosting {
        engine,
        run: uuid::Uuid::new_v4().simple().to_string(),
        objective,
        start: base_margin(objective, base),
        labels: &state.labels,
        params,
        cuts: &cuts,
        features: features.len(),
        long_args: format!("__key, __label, {bin_list}"),
    };
    let trees = boosting.run(progress).await;
    let released = boosting.release().await;
    let trees = trees?;
    released?;
    Ok(GbdtModel {
        objective,
        base_score: base,
        feature_names: features.to_vec(),
        cuts,
        trees,
        params: params.clone(),
        rows: state.labels.count,
    })
}

/// The binned table's name in the training session.
const BINNED: &str = "__ember_train_binned";

/// Finished trees a level plan carries, so that a process whose rows missed
/// a few rounds (another executor ran their partition) catches up without
/// re-reading them.
const RECENT_TREES: usize = 4;

/// Tree jobs that find rows missing one after another before the rest of a
/// run is grown by level queries only (each such job costs a job more).
const MISSES_BEFORE_LEVELS_ONLY: usize = 3;

/// What a run's trees took.
#[derive(Debug)]
struct Counts {
    /// Whether a level query has read every column, so processes keep rows.
    rows_kept: bool,
    /// Whether trees are still tried as tree jobs.
    tree_jobs_on: bool,
    /// Tree jobs run, those that found rows missing (or failed), and the
    /// latest run of them that did.
    tree_jobs: usize,
    tree_jobs_missing: usize,
    missing_in_a_row: usize,
    /// Level queries run, and those that had to re-read the binned table.
    levels: usize,
    reread: usize,
}

impl Default for Counts {
    fn default() -> Self {
        Self {
            rows_kept: false,
            tree_jobs_on: true,
            tree_jobs: 0,
            tree_jobs_missing: 0,
            missing_in_a_row: 0,
            levels: 0,
            reread: 0,
        }
    }
}

/// The boosting loop of one training run over the binned table.
struct Boosting<'a> {
    engine: &'a TrainEngine,
    /// Names the rows processes keep for this run.
    run: String,
    objective: Objective,
    /// Every row's margin before the first tree.
    start: f64,
    labels: &'a ember_udfs::training::gbdt::booster::LabelStats,
    params: &'a GbdtParams,
    cuts: &'a [Vec<f32>],
    features: usize,
    /// The level function's arguments that rebuild rows: key, label, bins.
    long_args: String,
}

impl Boosting<'_> {
    fn quantiser_after(&self, drift: f64) -> Result<Quantiser> {
        let labels = self.labels;
        let bound = gradient_bound(self.objective, labels.min, labels.max, self.start, drift);
        Ok(Quantiser::for_rows(FUNCTION, labels.count, bound)?)
    }

    /// Grows every tree. On a cluster, each tree after the first is one
    /// tree job over the rows processes keep; a tree job that finds some
    /// partition's rows missing, the first tree and every tree embedded are
    /// grown with one level query per level ([`Self::grow_by_levels`]).
    async fn run(&self, progress: &(dyn Fn(TrainProgress) + Sync)) -> Result<Vec<Tree>> {
        let mut trees: Vec<Tree> = Vec::with_capacity(self.params.rounds);
        let mut quantiser = self.quantiser_after(0.0)?;
        let mut drift = 0.0;
        let mut count = Counts::default();
        for round in 0..self.params.rounds {
            let mut grown = None;
            if count.rows_kept && count.tree_jobs_on && self.engine.runs_tree_jobs() {
                count.tree_jobs += 1;
                match self.tree_job(round, quantiser, &trees).await {
                    Ok(Some(tree)) => {
                        grown = Some(tree);
                        count.missing_in_a_row = 0;
                    }
                    Ok(None) => {
                        count.tree_jobs_missing += 1;
                        count.missing_in_a_row += 1;
                        tracing::debug!(
                            "round {round}: a tree job found rows missing; growing it by levels"
                        );
                        if count.missing_in_a_row == MISSES_BEFORE_LEVELS_ONLY {
                            count.tree_jobs_on = false;
                            tracing::warn!(
                                "{MISSES_BEFORE_LEVELS_ONLY} tree jobs in a row found rows \
                                 missing; growing the remaining trees by levels"
                            );
                        }
                    }
                    Err(e) => {
                        // The same tree by level queries; an error there is
                        // the run's error.
                        count.tree_jobs_missing += 1;
                        count.tree_jobs_on = false;
                        tracing::warn!(
                            "a tree job failed ({e}); growing this and the remaining trees by levels"
                        );
                    }
                }
            }
            let tree = match grown {
                Some(tree) => tree,
                None => {
                    self.grow_by_levels(round, quantiser, &trees, &mut count)
                        .await?
                }
            };
            drift += tree.max_abs_leaf();
            if round + 1 < self.params.rounds {
                quantiser = self.quantiser_after(drift)?;
            }
            trees.push(tree);
            progress(TrainProgress::Step {
                done: round + 1,
                total: self.params.rounds,
            });
        }
        tracing::info!(
            "trained {} trees: {} tree jobs ({} found rows missing), {} level queries ({} re-read the binned table)",
            trees.len(),
            count.tree_jobs,
            count.tree_jobs_missing,
            count.levels,
            count.reread
        );
        if count.tree_jobs > 0 {
            progress(TrainProgress::TreeJobs {
                jobs: count.tree_jobs,
                missing: count.tree_jobs_missing,
            });
        }
        if count.reread > 0 {
            progress(TrainProgress::Reread {
                levels: count.reread,
                total: count.levels,
            });
        }
        Ok(trees)
    }

    /// How the round's gradients are computed, as plans carry it.
    fn gradient(&self, quantiser: Quantiser) -> GradientPlan {
        GradientPlan {
            objective: self.objective.name().to_string(),
            quantiser,
        }
    }

    /// Grows the tree of `round` in one tree job; `None` when some rows were
    /// not kept where their partition ran.
    async fn tree_job(
        &self,
        round: usize,
        quantiser: Quantiser,
        trees: &[Tree],
    ) -> Result<Option<Tree>> {
        let from = round.saturating_sub(RECENT_TREES);
        let plan = TreeJobPlan {
            run: self.run.clone(),
            round: round as u32,
            start: self.start,
            gradient: self.gradient(quantiser),
            params: TreeParams::of(self.params),
            cuts: self
                .cuts
                .iter()
                .map(|c| c.iter().map(|v| v.to_bits()).collect())
                .collect(),
            trees_from: from as u32,
            trees: trees[from..].to_vec(),
        };
        let tree = self.engine.tree_job(BINNED, json(&plan)?).await?;
        if let Some(tree) = &tree {
            tree.validate(FUNCTION, self.features)?;
        }
        Ok(tree)
    }

    /// Grows the tree of `round` with one level query per level. A level is
    /// asked first of the rows processes keep (reading only row keys); if
    /// some were not kept, it is asked again with every column, which
    /// rebuilds them. The first level of a run always reads everything.
    async fn grow_by_levels(
        &self,
        round: usize,
        quantiser: Quantiser,
        trees: &[Tree],
        count: &mut Counts,
    ) -> Result<Tree> {
        let mut grower = Grower::new(self.params, self.cuts, quantiser);
        while let Some(build) = grower.pending() {
            let mut plan = ResidentLevelPlan {
                run: self.run.clone(),
                round: round as u32,
                start: self.start,
                gradient: self.gradient(quantiser),
                level: LevelPlan {
                    features: self.features,
                    stride: grower.stride(),
                    build: build.to_vec(),
                    tree: grower.tree().clone(),
                },
                trees_from: round.saturating_sub(RECENT_TREES) as u32,
                trees: trees[round.saturating_sub(RECENT_TREES)..].to_vec(),
            };
            count.levels += 1;
            let len = plan.level.build.len() * self.features * plan.level.stride;
            let mut histograms = None;
            if count.rows_kept {
                let (missing, hist) = self.level(&plan, "__key", len).await?;
                if missing == 0 {
                    histograms = Some(hist);
                } else {
                    count.reread += 1;
                    tracing::debug!(
                        "round {round}: {missing} rows not kept; re-reading the binned table"
                    );
                }
            }
            let hist = match histograms {
                Some(hist) => hist,
                None => {
                    plan.trees_from = 0;
                    plan.trees = trees.to_vec();
                    let (missing, hist) = self.level(&plan, &self.long_args, len).await?;
                    if missing != 0 {
                        return Err(JobsError::Usage(format!(
                            "internal: {missing} rows missing from a level that read every column"
                        )));
                    }
                    count.rows_kept = true;
                    hist
                }
            };
            grower.apply(&hist)?;
        }
        Ok(grower.finish())
    }

    /// Runs one level query and returns its missing-row count and histograms.
    async fn level(
        &self,
        plan: &ResidentLevelPlan,
        args: &str,
        len: usize,
    ) -> Result<(u64, Vec<GradPair>)> {
        let sql = format!(
            "SELECT __ember_gbdt_level({}, {args}) FROM {BINNED}",
            quote_literal(&json(plan)?)
        );
        let bytes = binary(self.engine.single_value(&sql).await?, "a level")?;
        Ok(level_result_from_bytes(FUNCTION, &bytes, len)?)
    }

    /// Drops the rows processes keep for the run, and the binned table.
    async fn release(&self) -> Result<()> {
        let sql = format!(
            "SELECT count(*) FROM {BINNED} WHERE __ember_gbdt_release({}, __key)",
            quote_literal(&self.run)
        );
        let released = self.engine.single_value(&sql).await.map(|_| ());
        self.engine.drop_table(BINNED).await?;
        released
    }
}
