//! Model folders in the authors' layout (FORMAT.md "Files of an AlexNet model folder"):
//! finding them, loading a [`Model`] from them and saving one to them.
//!
//! Files are `<prefix>.<kind>.<NN>.<ext>` with NN the 1-based layer position. Per conv/fc layer:
//! `biasVec` (C_t) required; `ctrdLst` (M, K, d) and `asmtLst` (conv (C_t, kh, kw, M), fc
//! (C_t, M)) together or not at all; dense `convKnl` (C_t, C_s/groups, kh, kw) or `fcntWei`
//! (C_t, C_s) optional; codebooks or dense weights must be there. Disk folders and in-memory
//! file lists are decoded by the same code ([`FileSource`]), so the embedded synthetic model
//! goes through exactly the checks a user's folder does.

use std::borrow::Cow;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::arch::{alexnet, Architecture, ParamKind, ParamShape, QuantSpec};
use crate::error::{ModelError, Result};
use crate::format::{bits_for, encode_bin_f32, encode_cbn, parse_bin_f32, parse_cbn};
use crate::weights::{Codebooks, LayerParams};
use crate::{Model, ModelSource};

/// The folder of model files inside an AlexNet folder.
pub const BIN_FILES_DIR: &str = "Bin.Files";
/// The AlexNet folder inside the authors' repository root.
pub const ALEXNET_DIR: &str = "AlexNet";
/// The file whose presence names a model's prefix.
const PREFIX_PROBE: &str = ".biasVec.01.bin";
/// At most this many codewords: indices are stored as bytes.
pub const MAX_CODEWORDS: usize = 256;

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
pub fn locate(path: &Path) -> Result<ModelFolder> {
    let path = std::fs::canonicalize(path).map_err(|e| ModelError::io(path, e))?;
    let repo_root = path.join(ALEXNET_DIR).join(BIN_FILES_DIR);
    let alexnet_dir = path.join(BIN_FILES_DIR);
    let (bin_dir, root) = if repo_root.is_dir() {
        (repo_root, Some(path))
    } else if alexnet_dir.is_dir() {
        let root = path.parent().map(Path::to_path_buf);
        (alexnet_dir, root)
    } else if path.is_dir() {
        let root = match path.file_name() {
            Some(name) if name == BIN_FILES_DIR => {
                path.parent().and_then(Path::parent).map(Path::to_path_buf)
            }
            _ => None,
        };
        (path, root)
    } else {
        return Err(ModelError::invalid(&path, "not a directory"));
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
    let entries = std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))?;
    let mut prefixes = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ModelError::io(dir, e))?;
        let name = entry.file_name();
        if let Some(prefix) = name.to_str().and_then(|n| n.strip_suffix(PREFIX_PROBE)) {
            prefixes.push(prefix.to_string());
        }
    }
    prefixes.sort();
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

    /// `AlexNet/imagenet_mean.single.bin` (next to `Bin.Files`), if present.
    pub fn mean_image(&self) -> Option<PathBuf> {
        let beside = self.bin_dir.parent().map(|p| p.to_path_buf());
        let in_root = self.root.as_ref().map(|r| r.join(ALEXNET_DIR));
        [beside, in_root]
            .into_iter()
            .flatten()
            .map(|dir| dir.join("imagenet_mean.single.bin"))
            .find(|p| p.is_file())
    }

    /// `Cls.Names/class_names.txt` under the root, if present.
    pub fn class_names(&self) -> Option<PathBuf> {
        self.under_root(&["Cls.Names", "class_names.txt"])
    }

    /// `Cls.Names/image_labels.txt` under the root, if present.
    pub fn image_labels(&self) -> Option<PathBuf> {
        self.under_root(&["Cls.Names", "image_labels.txt"])
    }

    /// `Bmp.Files/` under the root, if present.
    pub fn bmp_dir(&self) -> Option<PathBuf> {
        let dir = self.root.as_ref()?.join("Bmp.Files");
        dir.is_dir().then_some(dir)
    }

    /// `ILSVRC12.227x227.IMG/dataMatTst.single.bin` under the root, if present.
    pub fn test_images(&self) -> Option<PathBuf> {
        self.under_root(&["ILSVRC12.227x227.IMG", "dataMatTst.single.bin"])
    }

    /// `ILSVRC12.227x227.IMG/lablVecTst.uint16.bin` under the root, if present.
    pub fn test_labels(&self) -> Option<PathBuf> {
        self.under_root(&["ILSVRC12.227x227.IMG", "lablVecTst.uint16.bin"])
    }

    fn under_root(&self, parts: &[&str]) -> Option<PathBuf> {
        let path = parts
            .iter()
            .fold(self.root.as_ref()?.clone(), |p, part| p.join(part));
        path.is_file().then_some(path)
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
/// Refuses a folder holding a `<prefix>.*` file this model would not overwrite, since loading
/// would then mix stale files into the model.
pub fn save(model: &Model, dir: &Path, prefix: &str) -> Result<()> {
    check_prefix(prefix, dir)?;
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let files = encode_files(model, prefix);
    for p in &model.params {
        for (kind, ext) in layer_file_kinds(&p.shape) {
            let name = file_name(prefix, kind, p.shape.index, ext);
            let path = dir.join(&name);
            if path.exists() && !files.iter().any(|(n, _)| *n == name) {
                return Err(ModelError::invalid(
                    &path,
                    "stale file: this model has no such file, so loading the folder would \
                     mix it in; remove it or save to another folder",
                ));
            }
        }
    }
    for (name, bytes) in &files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| ModelError::io(&path, e))?;
    }
    Ok(())
}

fn check_prefix(prefix: &str, dir: &Path) -> Result<()> {
    if prefix.is_empty() || prefix.contains(['/', '\\']) {
        return Err(ModelError::invalid(
            dir,
            format!("file prefix {prefix:?} must be non-empty without path separators"),
        ));
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
    /// The bytes of `name`, or None if there is no such file.
    fn read(&self, name: &str) -> Result<Option<Cow<'_, [u8]>>>;
}

struct DiskFiles<'a>(&'a Path);

impl FileSource for DiskFiles<'_> {
    fn dir(&self) -> PathBuf {
        self.0.to_path_buf()
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn read(&self, name: &str) -> Result<Option<Cow<'_, [u8]>>> {
        let path = self.path(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(Cow::Owned(bytes))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ModelError::io(&path, e)),
        }
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
    fn read(&self, name: &str) -> Result<Option<Cow<'_, [u8]>>> {
        let found = self.0.iter().find(|(n, _)| n == name);
        Ok(found.map(|(_, bytes)| Cow::Borrowed(bytes.as_slice())))
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

    /// The file's bytes and the path naming it, or None when absent.
    fn read(&self, kind: &str, ext: &str) -> Result<Option<(Cow<'a, [u8]>, PathBuf)>> {
        let name = self.name(kind, ext);
        Ok(self.src.read(&name)?.map(|b| (b, self.src.path(&name))))
    }

    /// Checks a file's dims against the layer; `layout` names them in the paper's notation.
    fn expect_dims(
        &self,
        path: &Path,
        found: &[usize],
        want: &[usize],
        layout: &str,
    ) -> Result<()> {
        if found == want {
            return Ok(());
        }
        Err(ModelError::invalid(
            path,
            format!(
                "dims {found:?} found, expected {layout} = {want:?} for {}",
                self.layer
            ),
        ))
    }

    fn bias(&self) -> Result<Vec<f32>> {
        let Some((bytes, path)) = self.read(BIAS, "bin")? else {
            return Err(self.missing(BIAS, "bin", format!("bias (C_t) of {}", self.layer)));
        };
        let bias = parse_bin_f32(&bytes, &path)?;
        self.expect_dims(&path, &bias.dims, &[self.shape.out_channels()], "(C_t)")?;
        Ok(bias.data)
    }

    fn codebooks(&self) -> Result<Option<Codebooks>> {
        let ctrd = self.read(CENTROIDS, "bin")?;
        let asmt = self.read(ASSIGNMENTS, "cbn")?;
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
        match (ctrd, asmt) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(together(ASSIGNMENTS, "cbn", self.name(CENTROIDS, "bin"))),
            (None, Some(_)) => Err(together(CENTROIDS, "bin", self.name(ASSIGNMENTS, "cbn"))),
            (Some((c, c_path)), Some((a, a_path))) => {
                let (spec, centroids) = self.centroids(&c, &c_path)?;
                let assignments = self.assignments(&a, &a_path, spec, &c_path)?;
                Ok(Some(Codebooks {
                    spec,
                    subspaces: spec.subspaces(self.shape.split_channels()),
                    centroids,
                    assignments,
                }))
            }
        }
    }

    /// ctrdLst (M, K, d): infers d and K, checks M = ceil(split channels / d) and K ≤ 256.
    fn centroids(&self, bytes: &[u8], path: &Path) -> Result<(QuantSpec, Vec<f32>)> {
        let ctrd = parse_bin_f32(bytes, path)?;
        let &[m, k, d] = ctrd.dims.as_slice() else {
            return Err(ModelError::invalid(
                path,
                format!("dims {:?} found, expected 3 dims (M, K, d)", ctrd.dims),
            ));
        };
        if k > MAX_CODEWORDS {
            return Err(ModelError::invalid(
                path,
                format!(
                    "K = {k} codewords (dims {:?}), at most {MAX_CODEWORDS}: indices are bytes",
                    ctrd.dims
                ),
            ));
        }
        let split = self.shape.split_channels();
        let spec = QuantSpec { d, k };
        let want_m = spec.subspaces(split);
        if m != want_m {
            return Err(ModelError::invalid(
                path,
                format!(
                    "dims {:?} (M, K, d) found: with d = {d}, {} needs M = ceil({split} / {d}) = \
                     {want_m} subspaces, found M = {m}",
                    ctrd.dims, self.layer
                ),
            ));
        }
        Ok((spec, ctrd.data))
    }

    /// asmtLst: conv (C_t, kh, kw, M), fc (C_t, M); every index < K.
    fn assignments(
        &self,
        bytes: &[u8],
        path: &Path,
        spec: QuantSpec,
        ctrd: &Path,
    ) -> Result<Vec<u8>> {
        let asmt = parse_cbn(bytes, path)?;
        let m = spec.subspaces(self.shape.split_channels());
        let layout = match self.shape.kind {
            ParamKind::Conv(_) => "(C_t, kh, kw, M)",
            ParamKind::Fc => "(C_t, M)",
        };
        self.expect_dims(path, &asmt.dims, &assignment_dims(&self.shape, m), layout)?;
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
        let Some((bytes, path)) = self.read(kind, "bin")? else {
            return Ok(None);
        };
        let w = parse_bin_f32(&bytes, &path)?;
        let layout = match self.shape.kind {
            ParamKind::Conv(_) => "(C_t, C_s/groups, kh, kw)",
            ParamKind::Fc => "(C_t, C_s)",
        };
        self.expect_dims(&path, &w.dims, &want, layout)?;
        Ok(Some(w.data))
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
