//! The result schema: typed rows with units, one folder per run, provenance, statistics.
//!
//! This crate is the data layer between measuring (the harness) and reporting: it knows
//! nothing of kernels or models, only of rows, files and numbers (STYLE.md 10–13).
//!
//! A run folder, `runs/<yyyymmddTHHMMSSZ>-<id>/`, is created once and never overwritten:
//! - `meta.json`: provenance ([`Meta`]), written at the start and rewritten at the end;
//! - `repeats.csv`, `layers.csv`, `images.csv`: raw measurements ([`RepeatRow`],
//!   [`LayerRow`], [`ImageRow`]), appended and synced repeat by repeat;
//! - `summary.json`: statistics ([`Summary`]), recomputed from the raw rows after every repeat;
//! - `sweep.csv` (runs of `qcnn sweep` only): one [`SweepRow`] per (d, K) configuration;
//! - `evaluation.csv` and `predictions.csv` (runs of `qcnn evaluate` only): accuracy per
//!   mode ([`EvaluationRow`]) and every image's top-5 per mode ([`PredictionRow`]).
//!
//! [`compare`] judges two sets of runs against each other (regression tracking).
//!
//! Glossary: a *run* is one invocation of the harness; a *repeat* measures every *mode*
//! (`dense`, `qcnn`, ...) once, over the same `planned_images` single-image batches; a
//! *kernel* is the implementation a mode ran (its registry name); a *phase* splits a Q-CNN
//! layer into its look-up-table computation (`table`) and its look-ups (`lookup`).

mod check;
pub mod compare;
pub mod error;
pub mod evaluation;
mod fsio;
pub mod meta;
pub mod reader;
pub mod rows;
pub mod stats;
pub mod summary;
pub mod sweep;
pub mod system;
pub mod writer;

pub use error::{Result, ResultsError};
pub use evaluation::{
    read_evaluation, write_evaluation, EvaluationRow, PredictionRow, PredictionsWriter,
    EVALUATION_COLUMNS, EVALUATION_FILE, PREDICTIONS_FILE, PREDICTION_COLUMNS,
};
pub use fsio::atomic_write;
pub use meta::{
    build_info, git_info, load_average, sha256_file, BlasInfo, BuildInfo, FileDigest, GitInfo,
    LayerOps, LayerPlan, LoadAverage, Meta, ModeInfo, ModelInfo, ProcessMemory, Storage,
    TargetInfo, META_FILE, SCHEMA,
};
pub use reader::{list_runs, read_run, read_runs, Run};
pub use rows::{
    ImageRow, LayerRow, Phase, RepeatRecord, RepeatRow, IMAGES_FILE, IMAGE_COLUMNS, LAYERS_FILE,
    LAYER_COLUMNS, REPEATS_FILE, REPEAT_COLUMNS,
};
pub use summary::{
    summarize, summarize_run, Analysis, ModeSummary, Summary, BASELINE_MODE, SUMMARY_FILE,
};
pub use sweep::{read_sweep, write_sweep, SweepRow, SWEEP_COLUMNS, SWEEP_FILE, SWEEP_ISAS};
pub use system::{collect_system, Cache, SystemInfo};
pub use writer::RunWriter;
