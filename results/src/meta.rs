//! Provenance of a run (`meta.json`): what ran, on what, built how, from which inputs.
//!
//! [`Meta::new`] collects what this process can find out by itself (system, build, git,
//! load, command line); the harness fills in what only it knows (BLAS, kernels, model,
//! input, pinned core) before handing the value to [`crate::RunWriter::create`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, ResultsError};
use crate::system::{collect_system, SystemInfo};

/// `meta.json` file name inside a run folder.
pub const META_FILE: &str = "meta.json";
/// Schema tag written into every `meta.json`; the reader rejects any other.
pub const SCHEMA: &str = "qcnn-results/1";
/// The largest load average a `meta.json` may record.
pub const MAX_LOAD: f64 = 1e6;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The run folder's name, `<yyyymmddTHHMMSSZ>-<id>`; set by the writer.
    pub run_id: String,
    /// RFC 3339, UTC; set by the writer.
    pub started_utc: String,
    /// RFC 3339, UTC; set by `RunWriter::finish`.
    pub finished_utc: Option<String>,
    /// True once `RunWriter::finish` ran (even if fewer repeats than planned completed).
    pub finished: bool,
    pub planned_repeats: u32,
    /// Single-image batches per repeat and mode.
    pub planned_images: u32,
    /// Repeats fully written; updated by `RunWriter::finish`.
    pub completed_repeats: u32,
    /// The modes measured in every repeat, in the order they run.
    pub modes: Vec<ModeInfo>,
    /// The speed-up of the quantized network that op counts predict (METHOD.md: 4.156).
    pub theoretical_speedup: Option<f64>,
    pub command_line: Vec<String>,
    /// The core the harness pinned itself to, if it did.
    pub pinned_core: Option<u32>,
    pub model: ModelInfo,
    /// Where the images came from (a folder, a `.bin` file, "synthetic seed 7", ...).
    pub input: String,
    pub blas: Option<BlasInfo>,
    pub build: BuildInfo,
    pub system: SystemInfo,
    pub load_at_start: Option<LoadAverage>,
    /// Model storage on disk, dense f32 vs quantized (the paper's storage column).
    #[serde(default)]
    pub storage: Option<Storage>,
    /// Op counts of every conv and fc layer of the model run: the per-layer theoretical
    /// speed-ups follow from them.
    #[serde(default)]
    pub layer_ops: Vec<LayerOps>,
    /// What the look-up kernels were prepared for: ISA level, CPU features, the caches the
    /// plans were sized from and where those sizes came from.
    #[serde(default)]
    pub target: Option<TargetInfo>,
    /// Anything else worth keeping (e.g. environment variables that change behaviour).
    pub notes: BTreeMap<String, String>,
}

/// Op counts of one conv or fc layer per image (METHOD.md).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerOps {
    /// Layer name as in `layers.csv` (`conv1`, `fc6`, ...).
    pub layer: String,
    /// Dense multiply-adds: H_t·W_t·C_t·kh·kw·(C_s/groups).
    pub dense_macs: u64,
    /// Multiply-adds building the look-up table: H_s·W_s·C_s·K.
    pub table_macs: u64,
    /// Look-up-adds: H_t·W_t·C_t·kh·kw·M.
    pub lookups: u64,
}

/// Bytes a model takes on disk in the authors' format.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Storage {
    /// Dense f32 weights and biases (`convKnl`/`fcntWei` + `biasVec` files).
    pub dense_bytes: u64,
    /// Codebooks, bit-packed assignments and biases (`ctrdLst` + `asmtLst` + `biasVec`).
    pub quantized_bytes: u64,
}

/// One measured mode: its name (the CSV `mode` value), kernel and instruction set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeInfo {
    pub mode: String,
    pub kernel: String,
    pub isa: String,
    /// The process its memory was measured in (`peak_rss_bytes` of `repeats.csv`) and that
    /// process's peaks before and after loading the model; absent when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ProcessMemory>,
    /// The schedule of every conv and fc layer (look-up modes; empty for others).
    #[serde(default)]
    pub plans: Vec<LayerPlan>,
}

impl ModeInfo {
    pub fn new(mode: &str, kernel: &str, isa: &str) -> Self {
        ModeInfo {
            mode: mode.to_string(),
            kernel: kernel.to_string(),
            isa: isa.to_string(),
            memory: None,
            plans: Vec::new(),
        }
    }
}

/// Where a mode's memory was measured, and the peak resident set size (VmHWM) of that process
/// outside classifying. Every figure is that process's own, never the harness's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessMemory {
    /// "child process (qcnn probe-memory)" for our modes and tract, "peer worker (Python
    /// 3.11.7)" for the Python peers.
    pub process: String,
    /// Before the model was loaded: the program's (or the interpreter's) own share.
    pub idle_peak_rss_bytes: Option<u64>,
    /// Once the model was loaded, loading transients included.
    pub load_peak_rss_bytes: Option<u64>,
}

/// How one layer of a mode was scheduled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerPlan {
    pub layer: String,
    pub kernel: String,
    /// The plan in words (bands, chunks, register blocks; layout for fc).
    pub plan: String,
}

/// The CPU and caches the look-up kernels were prepared for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// The look-up ISA level (`scalar`, `avx2`, `avx512`, `neon`).
    pub isa: String,
    /// The CPU features that level's kernels use.
    pub isa_features: Vec<String>,
    /// The SIMD features this CPU has (any level could use).
    pub cpu_features: Vec<String>,
    pub l1d_bytes: u64,
    pub l2_bytes: u64,
    pub l3_bytes: u64,
    /// "sysfs (cpu N)", "override '…'" or "fallback …".
    pub caches_from: String,
}

/// The BLAS library behind the dense mode, as the harness reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlasInfo {
    pub library: String,
    pub version: String,
    /// The kernel family the library selected (OpenBLAS core name).
    pub core_type: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// "synthetic seed 7", or the model folder that was read.
    pub source: String,
    /// Every file the model was read from, with its hash.
    pub files: Vec<FileDigest>,
}

impl ModelInfo {
    /// Hashes `files` (sha256), in the given order.
    pub fn hashed<P: AsRef<Path>>(source: &str, files: &[P]) -> Result<Self> {
        let files = files
            .iter()
            .map(|p| FileDigest::of(p.as_ref()))
            .collect::<Result<_>>()?;
        Ok(ModelInfo {
            source: source.to_string(),
            files,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub path: String,
    pub bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
}

impl FileDigest {
    pub fn of(path: &Path) -> Result<Self> {
        let (sha256, bytes) = sha256_and_len(path)?;
        Ok(FileDigest {
            path: path.display().to_string(),
            bytes,
            sha256,
        })
    }
}

/// The sha256 of a file's content, lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    Ok(sha256_and_len(path)?.0)
}

fn sha256_and_len(path: &Path) -> Result<(String, u64)> {
    // A regular file only: hashing a FIFO would block, `/dev/zero` would never end.
    let (mut file, _) = qcnn_files::open_regular(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| ResultsError::io(path, "read for hashing", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, total))
}

/// How the measuring program was built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// `rustc -V` of the compiler that built this crate (and so the harness).
    pub rustc: String,
    /// Cargo profile (`release`, `debug`): a debug build's timings mean little.
    pub profile: String,
    pub opt_level: String,
    pub debug_assertions: bool,
    pub crate_version: String,
    /// The target triple the program was compiled for (`aarch64-unknown-linux-gnu`).
    #[serde(default)]
    pub target: String,
    /// None when git or the repository is absent.
    pub git: Option<GitInfo>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitInfo {
    pub commit: String,
    /// Tracked files differ from `commit` (untracked files, like run folders, do not count).
    pub dirty: bool,
}

/// `/proc/loadavg`: run-queue averages and the runnable / total thread counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    pub runnable: u32,
    pub threads: u32,
}

impl Meta {
    /// A plan with everything this process can collect itself; the harness fills `blas`,
    /// `model`, `input`, `pinned_core`, `theoretical_speedup` and `notes`.
    pub fn new(planned_repeats: u32, planned_images: u32, modes: Vec<ModeInfo>) -> Self {
        Meta {
            schema: SCHEMA.to_string(),
            run_id: String::new(),
            started_utc: String::new(),
            finished_utc: None,
            finished: false,
            planned_repeats,
            planned_images,
            completed_repeats: 0,
            modes,
            theoretical_speedup: None,
            command_line: std::env::args().collect(),
            pinned_core: None,
            model: ModelInfo::default(),
            input: String::new(),
            blas: None,
            build: build_info(),
            system: collect_system(),
            load_at_start: load_average(),
            storage: None,
            layer_ops: Vec::new(),
            target: None,
            notes: BTreeMap::new(),
        }
    }

    pub fn mode(&self, name: &str) -> Option<&ModeInfo> {
        self.modes.iter().find(|m| m.mode == name)
    }

    /// Plan checks shared by the writer and the reader; the problem says what to fix.
    pub fn check(&self) -> Result<(), String> {
        if self.schema != SCHEMA {
            return Err(format!(
                "schema is '{}', expected '{SCHEMA}' (not a qcnn run, or another version)",
                self.schema
            ));
        }
        if self.planned_repeats == 0 || self.planned_images == 0 {
            return Err("planned_repeats and planned_images must be at least 1".into());
        }
        if self.modes.is_empty() {
            return Err("no modes planned".into());
        }
        for (i, m) in self.modes.iter().enumerate() {
            crate::rows::check_name("mode", &m.mode)
                .map_err(|e| format!("mode #{}: {e}", i + 1))?;
            if self.modes[..i].iter().any(|o| o.mode == m.mode) {
                return Err(format!("mode '{}' is planned twice", m.mode));
            }
        }
        if self.completed_repeats > self.planned_repeats {
            return Err(format!(
                "completed_repeats {} exceeds planned_repeats {}",
                self.completed_repeats, self.planned_repeats
            ));
        }
        if let Some(t) = self.theoretical_speedup {
            crate::rows::check_range("theoretical_speedup", t, 1e-9..=crate::sweep::MAX_RATIO, "")
                .map_err(|e| e.replace("column ", "field "))?;
        }
        if let Some(load) = &self.load_at_start {
            for (field, v) in [
                ("one", load.one),
                ("five", load.five),
                ("fifteen", load.fifteen),
            ] {
                crate::rows::check_range(field, v, 0.0..=MAX_LOAD, "")
                    .map_err(|e| format!("load_at_start: {}", e.replace("column ", "field ")))?;
            }
        }
        Ok(())
    }
}

/// Build-time facts recorded by `build.rs`, plus git state of the source tree at run time.
pub fn build_info() -> BuildInfo {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    BuildInfo {
        rustc: env!("QCNN_RUSTC_VERSION").to_string(),
        profile: env!("QCNN_BUILD_PROFILE").to_string(),
        opt_level: env!("QCNN_OPT_LEVEL").to_string(),
        debug_assertions: cfg!(debug_assertions),
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        target: env!("QCNN_BUILD_TARGET").to_string(),
        git: git_info(&workspace),
    }
}

/// The commit checked out in `dir` and whether tracked files changed; None without git.
pub fn git_info(dir: &Path) -> Option<GitInfo> {
    let commit = run_git(dir, &["rev-parse", "HEAD"])?;
    let status = run_git(dir, &["status", "--porcelain", "--untracked-files=no"])?;
    Some(GitInfo {
        commit: commit.trim().to_string(),
        dirty: !status.trim().is_empty(),
    })
}

fn run_git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The machine load right now (`/proc/loadavg`); None where the file is absent or odd.
pub fn load_average() -> Option<LoadAverage> {
    parse_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

fn parse_loadavg(text: &str) -> Option<LoadAverage> {
    let mut it = text.split_whitespace();
    let one = it.next()?.parse().ok()?;
    let five = it.next()?.parse().ok()?;
    let fifteen = it.next()?.parse().ok()?;
    let (runnable, threads) = it.next()?.split_once('/')?;
    Some(LoadAverage {
        one,
        five,
        fifteen,
        runnable: runnable.parse().ok()?,
        threads: threads.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_loadavg() {
        let l = parse_loadavg("0.52 0.58 0.59 2/1234 5678\n").unwrap();
        assert_eq!((l.one, l.runnable, l.threads), (0.52, 2, 1234));
        assert_eq!(parse_loadavg("garbage"), None);
    }
}
