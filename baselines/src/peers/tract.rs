//! sonos/tract, in-process: the exported ONNX bytes, parsed, optimised and run by
//! `tract-onnx` on tract's default single-thread executor.

use std::collections::BTreeMap;

use qcnn_onnx::Interface;
use qcnn_runner::{Network, Observer};
use tract_onnx::prelude::tract_data::internal::ensure;
use tract_onnx::prelude::*;

use super::{Peer, PeerInfo, PeerMemory, Timing};

/// The tract release this build links: `tract-onnx = "=…"` in baselines/Cargo.toml (tract
/// exposes no version constant, so the two are kept in step by hand).
pub const TRACT_VERSION: &str = "0.23.9";

/// tract running our dense AlexNet.
pub struct TractPeer {
    info: PeerInfo,
    interface: Interface,
    /// A plan state reused for every image, as a serving loop would.
    state: TypedSimpleState,
    /// The last forward's probabilities then logits. Layout (C_out + C_out).
    outputs: Vec<f32>,
    fault: Option<String>,
}

impl TractPeer {
    /// Loads an ONNX model (`onnx`, the bytes of a `qcnn-onnx` export with `interface`) in
    /// tract. Errors say what tract refused.
    pub fn open(onnx: &[u8], interface: Interface) -> Result<TractPeer, String> {
        let input_fact = f32::fact(interface.input_dims.clone());
        let plan = tract_onnx::onnx()
            .model_for_read(&mut &onnx[..])
            .and_then(|m| m.with_input_fact(0, input_fact.into()))
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| format!("tract could not load the model: {e:#}"))?;
        let state = plan
            .spawn()
            .map_err(|e| format!("tract could not prepare a run: {e:#}"))?;
        let mut settings = BTreeMap::new();
        settings.insert("executor".into(), "single thread (tract's default)".into());
        settings.insert("optimisation".into(), "into_optimized".into());
        settings.insert("precision".into(), "f32".into());
        settings.insert("timed".into(), Timing::Harness.name().into());
        let logits_len = interface
            .logits
            .as_ref()
            .map_or(0, |_| interface.output_len());
        Ok(TractPeer {
            info: PeerInfo {
                name: "tract".into(),
                version: TRACT_VERSION.into(),
                settings,
                timing: Timing::Harness,
            },
            outputs: vec![f32::NAN; interface.output_len() + logits_len],
            interface,
            state,
            fault: None,
        })
    }

    fn run(&mut self, input: &[f32]) -> TractResult<()> {
        let tensor = Tensor::from_shape(&self.interface.input_dims, input)?;
        let results = self.state.run(tvec!(tensor.into()))?;
        let mut at = 0;
        for value in &results {
            let view = value.to_plain_array_view::<f32>()?;
            let end = at + view.len();
            ensure!(
                end <= self.outputs.len(),
                "tract returned more values than the graph's outputs hold"
            );
            for (out, v) in self.outputs[at..end].iter_mut().zip(view.iter()) {
                *out = *v;
            }
            at = end;
        }
        ensure!(
            at == self.outputs.len(),
            "tract returned {at} values, expected {}",
            self.outputs.len()
        );
        Ok(())
    }
}

impl Network for TractPeer {
    fn mode(&self) -> String {
        self.info.name.clone()
    }

    fn kernels(&self) -> String {
        self.info.label()
    }

    fn forward(&mut self, input: &[f32], _observer: &mut dyn Observer) -> &[f32] {
        if self.fault.is_none() {
            if let Err(e) = self.run(input) {
                self.fault = Some(format!("tract: {e:#}"));
            }
        }
        if self.fault.is_some() {
            self.outputs.fill(f32::NAN);
        }
        &self.outputs[..self.interface.output_len()]
    }
}

impl Peer for TractPeer {
    fn info(&self) -> &PeerInfo {
        &self.info
    }

    fn engine_ms(&self) -> Option<f64> {
        None
    }

    fn logits(&self) -> Option<(&str, &[f32])> {
        let name = self.interface.logits.as_deref()?;
        Some((name, &self.outputs[self.interface.output_len()..]))
    }

    fn fault(&self) -> Option<&str> {
        self.fault.as_deref()
    }

    fn as_network(&mut self) -> &mut dyn Network {
        self
    }

    /// In process: the harness measures tract in a child process, like its own modes.
    fn memory(&mut self) -> Option<PeerMemory> {
        None
    }
}
