//! `--dump-layers DIR`: every layer's output as the authors' `.bin` arrays, named as in
//! docs/FORMAT.md "Layer dumps" (conv and fc before their ReLU; ReLU and dropout not written).

use std::path::{Path, PathBuf};

use qcnn_model::format::write_bin_f32;
use qcnn_model::{Layer, LayerKind, Shape};
use qcnn_runner::Observer;

pub struct LayerDumper {
    dir: PathBuf,
    shapes: Vec<Shape>,
    /// The first write error; later layers are skipped and the caller reports it.
    pub error: Option<qcnn_model::ModelError>,
    pub written: Vec<PathBuf>,
}

impl LayerDumper {
    pub fn new(dir: &Path, shapes: Vec<Shape>) -> Self {
        LayerDumper {
            dir: dir.to_path_buf(),
            shapes,
            error: None,
            written: Vec::new(),
        }
    }

    /// Writes `name.bin` with Caffe dims: (C, H, W) for maps, (C) for vectors.
    pub fn write(&mut self, name: &str, shape: Shape, data: &[f32]) {
        if self.error.is_some() {
            return;
        }
        let path = self.dir.join(format!("{name}.bin"));
        let dims: Vec<usize> = if shape.h == 1 && shape.w == 1 {
            vec![shape.c]
        } else {
            vec![shape.c, shape.h, shape.w]
        };
        match write_bin_f32(&path, &dims, data) {
            Ok(()) => self.written.push(path),
            Err(e) => self.error = Some(e),
        }
    }
}

impl Observer for LayerDumper {
    fn after_layer(&mut self, index: usize, layer: &Layer, output: &[f32]) {
        if !matches!(layer.kind, LayerKind::Relu | LayerKind::Dropout) {
            let shape = self.shapes[index];
            self.write(layer.name, shape, output);
        }
    }
}
