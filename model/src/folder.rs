//! Model folders in the authors' layout (FORMAT.md "Files of an AlexNet model folder"):
//! finding them, loading a [`Model`] from them and saving one to them.
//!
//! Files are `<prefix>.<kind>.<NN>.<ext>` with NN the 1-based layer position. Per conv/fc layer:
//! `biasVec` (C_t) required; `ctrdLst` (M, K, d) and `asmtLst` (conv (C_t, kh, kw, M), fc
//! (C_t, M)) together or not at all; dense `convKnl` (C_t, C_s/groups, kh, kw) or `fcntWei`
//! (C_t, C_s) optional; codebooks or dense weights must be there. Disk folders and in-memory
//! file lists are decoded by the same code ([`FileSource`]), so the embedded synthetic model
//! goes through exactly the checks a user's folder does.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use crate::arch::{alexnet, Architecture, ParamKind, ParamShape, QuantSpec};
use crate::error::{ModelError, Result};
use crate::format::{
    bits_for, decode_bin_f32, decode_cbn, encode_bin_f32, encode_cbn, exact_dims, BinArray,
    CbnArray, DimsCheck,
};
use crate::weights::{Codebooks, LayerParams};
use crate::{Model, ModelSource};

/// The folder of model files inside an AlexNet folder.
pub const BIN_FILES_DIR: &str = "Bin.Files";
/// The AlexNet folder inside the authors' repository root.
pub const ALEXNET_DIR: &str = "AlexNet";
/// The file whose presence names a model's prefix.
const PREFIX_PROBE: &str = ".biasVec.01.bin";
/// At most this many codewords: indices are stored as bytes.
pub const MAX_CODEWORDS: usize = QuantSpec::MAX_K;
/// The longest file-name prefix [`save`] writes.
pub const MAX_PREFIX_LEN: usize = 100;

/// File kinds (FORMAT.md table).
pub const BIAS: &str = "biasVec";
pub const CENTROIDS: &str = "ctrdLst";
pub const ASSIGNMENTS: &str = "asmtLst";
pub const CONV_WEIGHTS: &str = "convKnl";
pub const FC_WEIGHTS: &str = "fcntWei";

/// `<prefix>.<kind>.<NN>.<ext>`, NN = `layer_index` + 1, zero-padded to 2 digits.
pub fn file_name(prefix: &str, kind: &str, layer_index: usize, ext: &str) -> String {
    format!("{prefix}.{kind}.{:02}.{ext}", layer_index + 1)
}

/// A located model folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFolder {
    /// The folder holding the `<prefix>.*.bin` / `.cbn` files.
    pub bin_dir: PathBuf,
    /// The file-name prefix, e.g. `bvlc_alexnet_aCaF`.
    pub prefix: String,
    /// The distribution root (holding `AlexNet/`, `Cls.Names/`, ...), when the layout shows one.
    pub root: Option<PathBuf>,
}

/// Finds the model files under `path`: the authors' repository root or the shared
/// `qcnn-alexnet` folder (has `AlexNet/Bin.Files`), an `AlexNet` folder (has `Bin.Files`), or
/// a folder holding the files itself. The prefix comes from the one `*.biasVec.01.bin` file.
/// A `Bin.Files` (or `AlexNet`) entry that is not a readable folder (a file, a dangling or
/// looping symbolic link) is an error naming it, not a reason to look elsewhere.
pub fn locate(path: &Path) -> Result<ModelFolder> {
    qcnn_files::require_dir(path)?;
    let path = std::fs::canonicalize(path).map_err(|e| ModelError::io(path, "resolve", e))?;
    let repo_root = path.join(ALEXNET_DIR).join(BIN_FILES_DIR);
    let alexnet_dir = path.join(BIN_FILES_DIR);
    let (bin_dir, root) = if qcnn_files::optional_dir(&repo_root)? {
        (repo_root, Some(path))
    } else if qcnn_files::optional_dir(&alexnet_dir)? {
        let root = path.parent().map(Path::to_path_buf);
        (alexnet_dir, root)
    } else {
        let root = match path.file_name() {
            Some(name) if name == BIN_FILES_DIR => {
                path.parent().and_then(Path::parent).map(Path::to_path_buf)
            }
            _ => None,
        };
        (path, root)
    };
    let prefix = find_prefix(&bin_dir)?;
    Ok(ModelFolder {
        bin_dir,
        prefix,
        root,
    })
}

/// The one prefix P with a `P.biasVec.01.bin` file in `dir`.
fn find_prefix(dir: &Path) -> Result<String> {
    let mut prefixes = Vec::new();
    for path in qcnn_files::list_dir(dir)? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(prefix) = name.strip_suffix(PREFIX_PROBE) {
            prefixes.push(prefix.to_string());
        }
    }
    match prefixes.len() {
        0 => Err(ModelError::Missing {
            dir: dir.to_path_buf(),
            name: format!("<prefix>{PREFIX_PROBE}"),
            what: "no model files here; give the authors' repository root, an AlexNet \
                   folder or a folder of <prefix>.<kind>.<NN>.<ext> files"
                .into(),
        }),
        1 => Ok(prefixes.remove(0)),
        _ => Err(ModelError::invalid(
            dir,
            format!("several models in one folder (prefixes {prefixes:?}); keep one per folder"),
        )),
    }
}

impl ModelFolder {
    /// `bin_dir/<prefix>.<kind>.<NN>.<ext>`, NN = `layer_index` + 1.
    pub fn file(&self, kind: &str, layer_index: usize, ext: &str) -> PathBuf {
        self.bin_dir
            .join(file_name(&self.prefix, kind, layer_index, ext))
    }

    /// `AlexNet/imagenet_mean.single.bin` (next to `Bin.Files`), if present. Something else
    /// of that name (a folder, a FIFO, a broken link) is an error, never "no mean image".
    pub fn mean_image(&self) -> Result<Option<PathBuf>> {
        let beside = self.bin_dir.parent().map(|p| p.to_path_buf());
        let in_root = self.root.as_ref().map(|r| r.join(ALEXNET_DIR));
        for dir in [beside, in_root].into_iter().flatten() {
            if let Some(path) = qcnn_files::optional_file(&dir.join("imagenet_mean.single.bin"))? {
                return Ok(Some(path));
            }
        }
        Ok(None)
    }

    /// `Cls.Names/class_names.txt` under the root, if present.
    pub fn class_names(&self) -> Result<Option<PathBuf>> {
        self.under_root(&["Cls.Names", "class_names.txt"])
    }

    /// `Cls.Names/image_labels.txt` under the root, if present.
    pub fn image_labels(&self) -> Result<Option<PathBuf>> {
        self.under_root(&["Cls.Names", "image_labels.txt"])
    }

    /// `Bmp.Files/` under the root, if present.
    pub fn bmp_dir(&self) -> Result<Option<PathBuf>> {
        let Some(root) = &self.root else {
            return Ok(None);
        };
        let dir = root.join("Bmp.Files");
        Ok(qcnn_files::optional_dir(&dir)?.then_some(dir))
    }

    /// `ILSVRC12.227x227.IMG/dataMatTst.single.bin` under the root, if present.
    pub fn test_images(&self) -> Result<Option<PathBuf>> {
        self.under_root(&["ILSVRC12.227x227.IMG", "dataMatTst.single.bin"])
    }

    /// `ILSVRC12.227x227.IMG/lablVecTst.uint16.bin` under the root, if present.
    pub fn test_labels(&self) -> Result<Option<PathBuf>> {
        self.under_root(&["ILSVRC12.227x227.IMG", "lablVecTst.uint16.bin"])
    }

    fn under_root(&self, parts: &[&str]) -> Result<Option<PathBuf>> {
        let Some(root) = &self.root else {
            return Ok(None);
        };
        let path = parts.iter().fold(root.clone(), |p, part| p.join(part));
        Ok(qcnn_files::optional_file(&path)?)
    }
}

/// Loads the AlexNet model found at `path` (see [`locate`]).
pub fn load(path: &Path) -> Result<Model> {
    load_folder(&locate(path)?, &alexnet())
}

/// Loads the model files of `folder` for `arch`, checking every file against its layer.
pub fn load_folder(folder: &ModelFolder, arch: &Architecture) -> Result<Model> {
    let source = DiskFiles(&folder.bin_dir);
    let params = decode_params(&source, &folder.prefix, arch)?;
    Ok(Model {
        arch: arch.clone(),
        params,
        source: ModelSource::Folder(folder.bin_dir.clone()),
    })
}

/// Writes `model` to `dir` (created if needed) as `<prefix>.*` files: the authors' bit width
/// (bits_for(K)) for assignments, dense files only for layers whose `dense` is Some.
/// Refuses a bad prefix ([`check_prefix`]), a model with a non-finite value (no loader would
/// read it back), and a folder holding a `<prefix>.*` file this model would not overwrite,
/// since loading would then mix stale files into the model. Each file is replaced through a
/// temporary file, so a special file of that name is replaced, never written through.
pub fn save(model: &Model, dir: &Path, prefix: &str) -> Result<()> {
    check_prefix(prefix).map_err(|problem| ModelError::invalid(dir, problem))?;
    for p in &model.params {
        check_finite_params(p, prefix, dir)?;
    }
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, "create", e))?;
    let files = encode_files(model, prefix);
    for p in &model.params {
        for (kind, ext) in layer_file_kinds(&p.shape) {
            let name = file_name(prefix, kind, p.shape.index, ext);
            let path = dir.join(&name);
            let present = std::fs::symlink_metadata(&path).is_ok();
            if present && !files.iter().any(|(n, _)| *n == name) {
                return Err(ModelError::invalid(
                    &path,
                    "stale file: this model has no such file, so loading the folder would \
                     mix it in; remove it or save to another folder",
                ));
            }
        }
    }
    for (name, bytes) in &files {
        qcnn_files::replace(&dir.join(name), bytes)?;
    }
    Ok(())
}

/// A file-name prefix that stays inside its folder: 1..=[`MAX_PREFIX_LEN`] characters out of
/// ASCII letters, digits, `_`, `-` and `.`, not starting with `.` (no hidden files, no `..`).
/// `Err` holds the problem, naming the rule.
pub fn check_prefix(prefix: &str) -> std::result::Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if prefix.is_empty()
        || prefix.len() > MAX_PREFIX_LEN
        || prefix.starts_with('.')
        || !prefix.chars().all(allowed)
    {
        return Err(format!(
            "file prefix {prefix:?}: must be 1 to {MAX_PREFIX_LEN} characters of ASCII letters, \
             digits, '_', '-' and '.', not starting with '.' (it names files inside the folder)"
        ));
    }
    Ok(())
}

/// Refuses a layer whose bias, codewords or dense weights hold NaN or ±∞, naming the file it
/// would go to and the position.
fn check_finite_params(p: &LayerParams, prefix: &str, dir: &Path) -> Result<()> {
    let (dense_kind, _) = dense_file(&p.shape);
    let arrays = [
        (BIAS, Some(p.bias.as_slice())),
        (
            CENTROIDS,
            p.codebooks.as_ref().map(|c| c.centroids.as_slice()),
        ),
        (dense_kind, p.dense.as_deref()),
    ];
    for (kind, values) in arrays {
        let Some(values) = values else { continue };
        if let Some(position) = values.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::invalid(
                dir.join(file_name(prefix, kind, p.shape.index, "bin")),
                format!(
                    "refusing to write value {} at flat position {position}: model files hold \
                     finite numbers only",
                    values[position]
                ),
            ));
        }
    }
    Ok(())
}

/// Every (kind, ext) a layer may have on disk.
fn layer_file_kinds(shape: &ParamShape) -> [(&'static str, &'static str); 4] {
    let dense = match shape.kind {
        ParamKind::Conv(_) => CONV_WEIGHTS,
        ParamKind::Fc => FC_WEIGHTS,
    };
    [
        (BIAS, "bin"),
        (CENTROIDS, "bin"),
        (ASSIGNMENTS, "cbn"),
        (dense, "bin"),
    ]
}

/// The files of `model` as (file name, bytes), in layer order, exactly as [`save`] writes them.
///
/// # Panics
/// If the model is inconsistent (buffer lengths not matching their shapes, an assignment
/// ≥ 2^bits_for(K)): a bug of whoever built it, since loaded models are checked.
pub fn encode_files(model: &Model, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for p in &model.params {
        let s = &p.shape;
        let name = |kind, ext| file_name(prefix, kind, s.index, ext);
        files.push((
            name(BIAS, "bin"),
            encode_bin_f32(&[s.out_channels()], &p.bias),
        ));
        if let Some(cb) = &p.codebooks {
            let ctrd_dims = [cb.subspaces, cb.spec.k, cb.spec.d];
            files.push((
                name(CENTROIDS, "bin"),
                encode_bin_f32(&ctrd_dims, &cb.centroids),
            ));
            let asmt = encode_cbn(
                &assignment_dims(s, cb.subspaces),
                bits_for(cb.spec.k),
                &cb.assignments,
            );
            files.push((name(ASSIGNMENTS, "cbn"), asmt));
        }
        if let Some(w) = &p.dense {
            let (kind, dims) = dense_file(s);
            files.push((name(kind, "bin"), encode_bin_f32(&dims, w)));
        }
    }
    files
}

/// Decodes in-memory files (as [`encode_files`] makes them) with the checks of [`load_folder`].
/// Errors name the file by its name alone.
pub fn decode_files(
    files: &[(String, Vec<u8>)],
    prefix: &str,
    arch: &Architecture,
    source: ModelSource,
) -> Result<Model> {
    let params = decode_params(&MemoryFiles(files), prefix, arch)?;
    Ok(Model {
        arch: arch.clone(),
        params,
        source,
    })
}

/// Where model files come from: a folder on disk or a list in memory.
trait FileSource {
    /// The folder, for "missing file" errors.
    fn dir(&self) -> PathBuf;
    /// The path naming `name` in errors.
    fn path(&self, name: &str) -> PathBuf;
    /// Whether there is a file `name` (an entry of another kind is an error).
    fn contains(&self, name: &str) -> Result<bool>;
    /// A reader of `name`'s bytes and their count, or None if there is no such file.
    fn open(&self, name: &str) -> Result<Option<(Box<dyn Read + '_>, u64)>>;
}

struct DiskFiles<'a>(&'a Path);

impl FileSource for DiskFiles<'_> {
    fn dir(&self) -> PathBuf {
        self.0.to_path_buf()
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn contains(&self, name: &str) -> Result<bool> {
        Ok(qcnn_files::optional_file(&self.path(name))?.is_some())
    }
    /// A regular file, or None when nothing has that name; anything else is an error.
    fn open(&self, name: &str) -> Result<Option<(Box<dyn Read + '_>, u64)>> {
        if !self.contains(name)? {
            return Ok(None);
        }
        let path = self.path(name);
        let (file, len) = qcnn_files::open_regular(&path)?;
        Ok(Some((Box::new(file), len)))
    }
}

struct MemoryFiles<'a>(&'a [(String, Vec<u8>)]);

impl FileSource for MemoryFiles<'_> {
    fn dir(&self) -> PathBuf {
        PathBuf::from("<in-memory model files>")
    }
    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(name)
    }
    fn contains(&self, name: &str) -> Result<bool> {
        Ok(self.0.iter().any(|(n, _)| n == name))
    }
    fn open(&self, name: &str) -> Result<Option<(Box<dyn Read + '_>, u64)>> {
        let found = self.0.iter().find(|(n, _)| n == name);
        Ok(found.map(|(_, bytes)| {
            let reader: Box<dyn Read + '_> = Box::new(Cursor::new(bytes.as_slice()));
            (reader, bytes.len() as u64)
        }))
    }
}

fn decode_params(
    src: &dyn FileSource,
    prefix: &str,
    arch: &Architecture,
) -> Result<Vec<LayerParams>> {
    arch.param_layers()
        .into_iter()
        .map(|shape| LayerDecoder::new(src, prefix, arch, shape).decode())
        .collect()
}

/// Decodes the files of one conv or fc layer.
struct LayerDecoder<'a> {
    src: &'a dyn FileSource,
    prefix: &'a str,
    layer: &'static str,
    shape: ParamShape,
}

impl<'a> LayerDecoder<'a> {
    fn new(
        src: &'a dyn FileSource,
        prefix: &'a str,
        arch: &Architecture,
        shape: ParamShape,
    ) -> Self {
        LayerDecoder {
            src,
            prefix,
            layer: arch.layers[shape.index].name,
            shape,
        }
    }

    fn decode(&self) -> Result<LayerParams> {
        let bias = self.bias()?;
        let codebooks = self.codebooks()?;
        let dense = self.dense()?;
        if codebooks.is_none() && dense.is_none() {
            let (dense_kind, _) = dense_file(&self.shape);
            return Err(self.missing(
                CENTROIDS,
                "bin",
                format!(
                    "{} has neither codebooks ({CENTROIDS} + {ASSIGNMENTS}) nor dense weights \
                     ({})",
                    self.layer,
                    self.name(dense_kind, "bin")
                ),
            ));
        }
        Ok(LayerParams {
            shape: self.shape,
            bias,
            codebooks,
            dense,
        })
    }

    fn name(&self, kind: &str, ext: &str) -> String {
        file_name(self.prefix, kind, self.shape.index, ext)
    }

    fn missing(&self, kind: &str, ext: &str, what: String) -> ModelError {
        ModelError::Missing {
            dir: self.src.dir(),
            name: self.name(kind, ext),
            what,
        }
    }

    /// The `.bin` file of `kind` and the path naming it, or None when absent; `check` accepts
    /// its dims before its payload is read.
    fn read_bin(&self, kind: &str, check: DimsCheck) -> Result<Option<(BinArray<f32>, PathBuf)>> {
        let name = self.name(kind, "bin");
        let path = self.src.path(&name);
        let Some((reader, len)) = self.src.open(&name)? else {
            return Ok(None);
        };
        Ok(Some((decode_bin_f32(reader, len, &path, check)?, path)))
    }

    /// The `.cbn` file of `kind`, as [`Self::read_bin`].
    fn read_cbn(&self, kind: &str, check: DimsCheck) -> Result<Option<(CbnArray, PathBuf)>> {
        let name = self.name(kind, "cbn");
        let path = self.src.path(&name);
        let Some((reader, len)) = self.src.open(&name)? else {
            return Ok(None);
        };
        Ok(Some((decode_cbn(reader, len, &path, check)?, path)))
    }

    /// Dims check of a file whose role fixes its dims; `layout` names them in the paper's
    /// notation, and the error names the layer.
    fn exactly<'b>(
        &'b self,
        want: &'b [usize],
        layout: &'b str,
    ) -> impl Fn(&[usize]) -> std::result::Result<(), String> + 'b {
        let check = exact_dims(want, layout);
        move |found| check(found).map_err(|problem| format!("{problem} for {}", self.layer))
    }

    fn bias(&self) -> Result<Vec<f32>> {
        let want = [self.shape.out_channels()];
        let Some((bias, _)) = self.read_bin(BIAS, &self.exactly(&want, "(C_t)"))? else {
            return Err(self.missing(BIAS, "bin", format!("bias (C_t) of {}", self.layer)));
        };
        Ok(bias.data)
    }

    fn codebooks(&self) -> Result<Option<Codebooks>> {
        let ctrd_name = self.name(CENTROIDS, "bin");
        let asmt_name = self.name(ASSIGNMENTS, "cbn");
        let ctrd_present = self.src.contains(&ctrd_name)?;
        let asmt_present = self.src.contains(&asmt_name)?;
        let together = |kind, ext, other| {
            self.missing(
                kind,
                ext,
                format!(
                    "{} has {other} but not this file; {CENTROIDS} and {ASSIGNMENTS} come together",
                    self.layer
                ),
            )
        };
        match (ctrd_present, asmt_present) {
            (false, false) => Ok(None),
            (true, false) => Err(together(ASSIGNMENTS, "cbn", ctrd_name)),
            (false, true) => Err(together(CENTROIDS, "bin", asmt_name)),
            (true, true) => {
                let (spec, centroids, c_path) = self.centroids()?;
                let assignments = self.assignments(spec, &c_path)?;
                Ok(Some(Codebooks {
                    spec,
                    subspaces: spec.subspaces(self.shape.split_channels()),
                    centroids,
                    assignments,
                }))
            }
        }
    }

    /// ctrdLst (M, K, d): infers d and K and checks them ([`QuantSpec::check_sizes`]) and
    /// M = ceil(split channels / d), all on the header, before the codewords are read.
    fn centroids(&self) -> Result<(QuantSpec, Vec<f32>, PathBuf)> {
        let split = self.shape.split_channels();
        let check = |dims: &[usize]| -> std::result::Result<(), String> {
            let &[m, k, d] = dims else {
                return Err(format!("dims {dims:?} found, expected 3 dims (M, K, d)"));
            };
            let spec = QuantSpec { d, k };
            spec.check_sizes(split)
                .map_err(|p| format!("dims {dims:?} (M, K, d): {p} for {}", self.layer))?;
            let want_m = spec.subspaces(split);
            if m != want_m {
                return Err(format!(
                    "dims {dims:?} (M, K, d) found: with d = {d}, {} needs M = ceil({split} / \
                     {d}) = {want_m} subspaces, found M = {m}",
                    self.layer
                ));
            }
            Ok(())
        };
        let (ctrd, path) = self
            .read_bin(CENTROIDS, &check)?
            .expect("the caller saw the file");
        let spec = QuantSpec {
            d: ctrd.dims[2],
            k: ctrd.dims[1],
        };
        Ok((spec, ctrd.data, path))
    }

    /// asmtLst: conv (C_t, kh, kw, M), fc (C_t, M); every index < K.
    fn assignments(&self, spec: QuantSpec, ctrd: &Path) -> Result<Vec<u8>> {
        let m = spec.subspaces(self.shape.split_channels());
        let layout = match self.shape.kind {
            ParamKind::Conv(_) => "(C_t, kh, kw, M)",
            ParamKind::Fc => "(C_t, M)",
        };
        let want = assignment_dims(&self.shape, m);
        let (asmt, path) = self
            .read_cbn(ASSIGNMENTS, &self.exactly(&want, layout))?
            .expect("the caller saw the file");
        if let Some(position) = asmt.data.iter().position(|&b| usize::from(b) >= spec.k) {
            return Err(ModelError::invalid(
                path,
                format!(
                    "index {} at flat position {position} is not below K = {} (codewords in {})",
                    asmt.data[position],
                    spec.k,
                    ctrd.display()
                ),
            ));
        }
        Ok(asmt.data)
    }

    /// convKnl (C_t, C_s/groups, kh, kw) or fcntWei (C_t, C_s), optional.
    fn dense(&self) -> Result<Option<Vec<f32>>> {
        let (kind, want) = dense_file(&self.shape);
        let layout = match self.shape.kind {
            ParamKind::Conv(_) => "(C_t, C_s/groups, kh, kw)",
            ParamKind::Fc => "(C_t, C_s)",
        };
        let read = self.read_bin(kind, &self.exactly(&want, layout))?;
        Ok(read.map(|(w, _)| w.data))
    }
}

/// conv (C_t, kh, kw, M); fc (C_t, M).
fn assignment_dims(s: &ParamShape, m: usize) -> Vec<usize> {
    match s.kind {
        ParamKind::Conv(c) => vec![s.out_channels(), c.kernel, c.kernel, m],
        ParamKind::Fc => vec![s.out_channels(), m],
    }
}

/// The dense file's kind and dims: conv convKnl (C_t, C_s/groups, kh, kw); fc fcntWei (C_t, C_s).
fn dense_file(s: &ParamShape) -> (&'static str, Vec<usize>) {
    match s.kind {
        ParamKind::Conv(c) => (
            CONV_WEIGHTS,
            vec![s.out_channels(), s.split_channels(), c.kernel, c.kernel],
        ),
        ParamKind::Fc => (FC_WEIGHTS, vec![s.out_channels(), s.split_channels()]),
    }
}
