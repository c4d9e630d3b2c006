//! One layer loop for every network: ping-pong buffers sized once, nothing allocated per image.

use qcnn_kernels::dense::{
    lrn, lrn_kernel_name, max_pool, pool_kernel_name, relu, softmax, LrnParams, LrnScratch,
    PoolScratch, PoolShape,
};
use qcnn_kernels::{ConvShape, FcShape, Isa};
use qcnn_model::arch::{LrnSpec, ParamKind, ParamShape, PoolSpec};
use qcnn_model::{Architecture, LayerKind, Shape};

use crate::Observer;

/// A conv or fc layer's computation; dense (BLAS) and quantized (look-ups) implement it.
pub trait WeightedOp {
    /// Kernel name for results, e.g. "sgemm-openblas".
    fn kernel(&self) -> String;
    /// The op's schedule in words (tables, bands, chunks), for results; empty if none.
    fn plan(&self) -> String {
        String::new()
    }
    /// Computes the layer: `input` is the previous layer's output (Layout (C_s, H_s, W_s), or
    /// (C_s) flattened for fc), `output` exactly the layer's output length, fully overwritten.
    fn run(&mut self, input: &[f32], output: &mut [f32], observer: &mut dyn Observer);
}

/// Where the current feature map lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// The caller's input (no copy until a layer must write in place).
    Input,
    /// `buffers[0]` or `buffers[1]`.
    Buf(usize),
}

/// Runs an [`Architecture`] layer by layer.
pub struct Pipeline {
    arch: Architecture,
    /// Output shape of every layer, in order.
    shapes: Vec<Shape>,
    /// One op per conv/fc layer, in layer order.
    ops: Vec<Box<dyn WeightedOp>>,
    work: Workspace,
}

/// Everything the layer loop writes: feature maps and the ops' scratch.
struct Workspace {
    /// Ping-pong feature maps, each as long as the largest map of the network.
    buffers: [Vec<f32>; 2],
    lrn: LrnScratch,
    pool: PoolScratch,
    /// The vector width of the pipeline's own vectorised ops (LRN).
    isa: Isa,
}

/// One layer's input: where it lives, and the layer's input and output shapes.
struct Io<'a> {
    cur: Slot,
    input: &'a [f32],
    in_shape: Shape,
    out_shape: Shape,
}

impl Pipeline {
    /// [`Pipeline::with_isa`] at the best ISA this CPU runs.
    pub fn new(arch: &Architecture, ops: Vec<Box<dyn WeightedOp>>) -> Self {
        Self::with_isa(arch, ops, Isa::detect())
    }

    /// A pipeline whose non-weighted vectorised ops (LRN) run at `isa`.
    ///
    /// Panics if `ops` does not hold exactly one op per conv/fc layer of `arch`, a layer's
    /// geometry is invalid or the CPU lacks `isa`: programming errors (the caller checks the
    /// ISA with `Isa::require`), caught before any image runs.
    pub fn with_isa(arch: &Architecture, ops: Vec<Box<dyn WeightedOp>>, isa: Isa) -> Self {
        assert!(
            isa.is_available(),
            "pipeline at {isa}, which this CPU lacks"
        );
        let params = arch.param_layers().len();
        assert_eq!(ops.len(), params, "one op per conv/fc layer");
        let shapes = arch.shapes();
        let largest = shapes
            .iter()
            .map(Shape::len)
            .fold(arch.input.len(), usize::max);
        let (mut widest_plane, mut pools) = (0, Vec::new());
        for (index, layer) in arch.layers.iter().enumerate() {
            let input = arch.input_of(index);
            match layer.kind {
                LayerKind::Lrn(spec) => {
                    assert!(lrn_params(spec).is_valid(), "{}: invalid LRN", layer.name);
                    widest_plane = widest_plane.max(input.h * input.w);
                }
                LayerKind::MaxPool(spec) => {
                    let pool = pool_shape(input, spec);
                    assert!(pool.is_valid(), "{}: invalid pool", layer.name);
                    let out = shapes[index];
                    pools.push(pool);
                    assert_eq!(
                        (pool.h_out(), pool.w_out()),
                        (out.h, out.w),
                        "{}",
                        layer.name
                    );
                }
                _ => {}
            }
        }
        Pipeline {
            arch: arch.clone(),
            shapes,
            ops,
            work: Workspace {
                buffers: [vec![0.0; largest], vec![0.0; largest]],
                lrn: LrnScratch::for_pixels(widest_plane),
                pool: PoolScratch::for_shapes(&pools),
                isa,
            },
        }
    }

    pub fn arch(&self) -> &Architecture {
        &self.arch
    }

    /// Runs every layer in order and calls `observer.after_layer(index, layer, output)` after
    /// each (conv/fc outputs are observed before the following ReLU, a separate layer as in
    /// Caffe). Returns the final output (the class probabilities for AlexNet).
    pub fn forward(&mut self, input: &[f32], observer: &mut dyn Observer) -> &[f32] {
        assert_eq!(input.len(), self.arch.input.len(), "network input length");
        let mut ops = self.ops.iter_mut();
        let mut cur = Slot::Input;
        let mut in_shape = self.arch.input;
        for (index, layer) in self.arch.layers.iter().enumerate() {
            let out_shape = self.shapes[index];
            let op = match layer.kind {
                LayerKind::Conv(_) | LayerKind::Fc { .. } => Some(
                    ops.next()
                        .expect("one op per conv/fc layer (checked in new)"),
                ),
                _ => None,
            };
            let io = Io {
                cur,
                input,
                in_shape,
                out_shape,
            };
            cur = self.work.run_layer(&layer.kind, op, io, observer);
            let output = &self.work.view(cur, input)[..out_shape.len()];
            observer.after_layer(index, layer, output);
            in_shape = out_shape;
        }
        // A network whose layers all pass the input through still returns a map it owns.
        let slot = self.work.make_writable(cur, input, in_shape.len());
        &self.work.buffer(slot)[..in_shape.len()]
    }

    /// "sgemm-openblas, sgemv-openblas, lrn-avx512, pool-avx512": every conv/fc layer's
    /// kernel, then the LRN and pooling kernels if the network has such layers.
    pub fn kernels(&self) -> String {
        // Distinct kernel names in layer order: each name says which layers it serves.
        let mut parts: Vec<String> = Vec::new();
        for name in self.ops.iter().map(|op| op.kernel()) {
            if !parts.contains(&name) {
                parts.push(name);
            }
        }
        let has = |kind: fn(&LayerKind) -> bool| self.arch.layers.iter().any(|l| kind(&l.kind));
        if has(|k| matches!(k, LayerKind::Lrn(_))) {
            parts.push(lrn_kernel_name(self.work.isa));
        }
        if has(|k| matches!(k, LayerKind::MaxPool(_))) {
            parts.push(pool_kernel_name(self.work.isa));
        }
        parts.join(", ")
    }

    /// (layer, kernel, plan) of every conv/fc layer, in layer order.
    pub fn plans(&self) -> Vec<(String, String, String)> {
        self.arch
            .param_layers()
            .iter()
            .zip(&self.ops)
            .map(|(shape, op)| {
                let name = self.arch.layers[shape.index].name.to_string();
                (name, op.kernel(), op.plan())
            })
            .collect()
    }

    /// The ISA of the pipeline's own vectorised ops.
    pub fn isa(&self) -> Isa {
        self.work.isa
    }
}

impl Workspace {
    /// Runs one layer on `io`'s map; returns where its output lives.
    fn run_layer(
        &mut self,
        kind: &LayerKind,
        op: Option<&mut Box<dyn WeightedOp>>,
        io: Io,
        observer: &mut dyn Observer,
    ) -> Slot {
        let (n_in, n_out) = (io.in_shape.len(), io.out_shape.len());
        let s = io.in_shape;
        if let LayerKind::Relu = kind {
            let slot = self.make_writable(io.cur, io.input, n_in);
            relu(&mut self.buffer(slot)[..n_in]);
            return slot;
        }
        if let LayerKind::Dropout = kind {
            // Identity at test time: the map stays where it is, nothing is copied.
            return io.cur;
        }
        let isa = self.isa;
        let (src, dst, next) = split(io.cur, io.input, &mut self.buffers);
        let (src, dst) = (&src[..n_in], &mut dst[..n_out]);
        match *kind {
            LayerKind::Conv(_) | LayerKind::Fc { .. } => op
                .expect("an op for a weighted layer")
                .run(src, dst, observer),
            LayerKind::Lrn(spec) => lrn(
                &lrn_params(spec),
                isa,
                s.c,
                s.h * s.w,
                src,
                dst,
                &mut self.lrn,
            ),
            LayerKind::MaxPool(spec) => {
                max_pool(&pool_shape(s, spec), isa, src, dst, &mut self.pool)
            }
            LayerKind::Softmax => softmax(src, dst, s.c),
            LayerKind::Relu | LayerKind::Dropout => unreachable!("handled above"),
        }
        next
    }

    fn buffer(&mut self, slot: Slot) -> &mut [f32] {
        match slot {
            Slot::Input => unreachable!("the caller's input is never written"),
            Slot::Buf(i) => &mut self.buffers[i],
        }
    }

    fn view<'a>(&'a self, slot: Slot, input: &'a [f32]) -> &'a [f32] {
        match slot {
            Slot::Input => input,
            Slot::Buf(i) => &self.buffers[i],
        }
    }

    /// A slot an in-place layer may write: the current buffer, or a copy of the caller's
    /// input.
    fn make_writable(&mut self, cur: Slot, input: &[f32], len: usize) -> Slot {
        if cur == Slot::Input {
            self.buffers[0][..len].copy_from_slice(&input[..len]);
            Slot::Buf(0)
        } else {
            cur
        }
    }
}

/// The current map (source), the other buffer (destination) and the destination's slot.
fn split<'a>(
    cur: Slot,
    input: &'a [f32],
    buffers: &'a mut [Vec<f32>; 2],
) -> (&'a [f32], &'a mut [f32], Slot) {
    let [a, b] = buffers;
    match cur {
        Slot::Input => (input, a, Slot::Buf(0)),
        Slot::Buf(0) => (a, b, Slot::Buf(1)),
        Slot::Buf(_) => (b, a, Slot::Buf(0)),
    }
}

/// The kernels' view of a conv layer.
pub fn conv_shape(p: &ParamShape) -> ConvShape {
    let ParamKind::Conv(c) = p.kind else {
        panic!("conv_shape of an fc layer (layer {})", p.index)
    };
    ConvShape {
        c_in: p.input.c,
        h_in: p.input.h,
        w_in: p.input.w,
        c_out: c.out_channels,
        kernel: c.kernel,
        stride: c.stride,
        pad: c.pad,
        groups: c.groups,
    }
}

/// The kernels' view of an fc layer: the input flattened in (C, H, W) order.
pub fn fc_shape(p: &ParamShape) -> FcShape {
    FcShape {
        c_in: p.input.len(),
        c_out: p.output.len(),
    }
}

/// The kernels' view of a max-pooling layer with input shape `input`.
pub fn pool_shape(input: Shape, spec: PoolSpec) -> PoolShape {
    PoolShape {
        channels: input.c,
        h_in: input.h,
        w_in: input.w,
        kernel: spec.kernel,
        stride: spec.stride,
        pad: spec.pad,
    }
}

/// The kernels' view of an LRN layer.
pub fn lrn_params(spec: LrnSpec) -> LrnParams {
    LrnParams {
        size: spec.size,
        alpha: spec.alpha,
        beta: spec.beta,
        k: spec.k,
    }
}
