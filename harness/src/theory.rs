//! `qcnn theory`: the paper's analysis of one network as a table, per conv/fc layer and in
//! total: dense multiply-adds against Q-CNN table multiply-adds plus look-ups, the
//! theoretical speed-up, storage dense against quantized and the compression. The figures
//! come from `qcnn_model::cost`, the function `reproduce` records its op counts with.

use std::fmt::Write as _;

use anyhow::Result;
use qcnn_model::arch::{QuantSettings, QuantSpec};
use qcnn_model::cost::{network_cost, LayerCost, NetworkCost};
use serde::Serialize;

use crate::models::NetworkArg;
use crate::quantize::{check_specs, parse_spec_arg};

#[derive(clap::Args, Debug)]
pub struct TheoryArgs {
    #[command(flatten)]
    pub network: NetworkArg,
    /// d/K of every conv layer. Default: the network's paper setting (8/128).
    #[arg(long, value_parser = parse_spec_arg)]
    pub conv: Option<QuantSpec>,
    /// d/K of every fc layer but the last. Default: the paper setting (4/32).
    #[arg(long, value_parser = parse_spec_arg)]
    pub fc: Option<QuantSpec>,
    /// d/K of the last fc layer. Default: the paper setting (1/16).
    #[arg(long, visible_alias = "last-fc", value_parser = parse_spec_arg)]
    pub fc8: Option<QuantSpec>,
    /// Print one JSON object instead of the Markdown table.
    #[arg(long)]
    pub json: bool,
}

impl TheoryArgs {
    /// The settings asked for, the network's paper settings where not given.
    pub fn settings(&self) -> QuantSettings {
        let paper = self.network.kind().default_quantization();
        QuantSettings {
            conv: self.conv.unwrap_or(paper.conv),
            fc: self.fc.unwrap_or(paper.fc),
            last_fc: self.fc8.unwrap_or(paper.last_fc),
        }
    }
}

pub fn run(args: &TheoryArgs) -> Result<()> {
    let arch = args.network.kind().architecture();
    let settings = args.settings();
    let specs = settings.specs(&arch);
    check_specs(&arch, &specs)?;
    let cost = network_cost(&arch, &specs.into_iter().map(Some).collect::<Vec<_>>());
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report(arch.name, settings, &cost))?
        );
    } else {
        print!("{}", markdown(arch.name, settings, &cost));
    }
    Ok(())
}

/// The JSON form: every figure of the table, unrounded.
#[derive(Serialize)]
pub struct TheoryReport {
    pub network: &'static str,
    pub conv: String,
    pub fc: String,
    pub last_fc: String,
    pub layers: Vec<LayerFigures>,
    pub total: LayerFigures,
}

#[derive(Serialize)]
pub struct LayerFigures {
    pub layer: String,
    /// "d/K"; empty for the total.
    pub spec: String,
    pub dense_macs: u64,
    pub table_macs: u64,
    pub lookups: u64,
    pub speedup: f64,
    pub dense_bytes: u64,
    pub quantized_bytes: u64,
    pub compression: f64,
}

fn spec_text(q: QuantSpec) -> String {
    format!("{}/{}", q.d, q.k)
}

fn figures(l: &LayerCost) -> LayerFigures {
    LayerFigures {
        layer: l.layer.to_string(),
        spec: l.spec.map(spec_text).unwrap_or_else(|| "dense".into()),
        dense_macs: l.dense_macs,
        table_macs: l.table_macs,
        lookups: l.lookups,
        speedup: l.speedup(),
        dense_bytes: l.dense_bytes,
        quantized_bytes: l.quantized_bytes,
        compression: l.compression(),
    }
}

pub fn report(network: &'static str, s: QuantSettings, cost: &NetworkCost) -> TheoryReport {
    TheoryReport {
        network,
        conv: spec_text(s.conv),
        fc: spec_text(s.fc),
        last_fc: spec_text(s.last_fc),
        layers: cost.layers.iter().map(figures).collect(),
        total: LayerFigures {
            layer: "total".into(),
            spec: String::new(),
            dense_macs: cost.dense_macs(),
            table_macs: cost.layers.iter().map(|l| l.table_macs).sum(),
            lookups: cost.layers.iter().map(|l| l.lookups).sum(),
            speedup: cost.speedup(),
            dense_bytes: cost.dense_bytes(),
            quantized_bytes: cost.quantized_bytes(),
            compression: cost.compression(),
        },
    }
}

/// Millions, two decimals (METHOD.md's table).
fn millions(n: u64) -> String {
    format!("{:.2}", n as f64 / 1e6)
}

/// Megabytes (10^6 bytes), two decimals.
fn megabytes(n: u64) -> String {
    format!("{:.2}", n as f64 / 1e6)
}

/// The Markdown table: per layer, then the total; speed-ups with three decimals, as
/// `reproduce` prints its theoretical figure.
pub fn markdown(network: &str, s: QuantSettings, cost: &NetworkCost) -> String {
    let r = report("", s, cost);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# {network}: theoretical cost per image (conv {}, fc {}, last fc {})\n",
        r.conv, r.fc, r.last_fc
    );
    let _ = writeln!(
        out,
        "| layer | d/K | dense (M mult-adds) | table (M) | look-ups (M) | speed-up | dense (MB) | Q-CNN (MB) | compression |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for l in r.layers.iter().chain(std::iter::once(&r.total)) {
        let bold = |t: String| {
            if l.layer == "total" {
                format!("**{t}**")
            } else {
                t
            }
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            l.layer,
            l.spec,
            millions(l.dense_macs),
            millions(l.table_macs),
            millions(l.lookups),
            bold(format!("{:.3}×", l.speedup)),
            megabytes(l.dense_bytes),
            megabytes(l.quantized_bytes),
            bold(format!("{:.2}×", l.compression)),
        );
    }
    let _ = writeln!(
        out,
        "\nOne look-up-add counts as one multiply-add (the authors' count; METHOD.md). Storage: \
         the authors' file format (dense f32 weights and biases vs f32 codebooks, bit-packed \
         indices and biases)."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use qcnn_model::NetworkKind;

    #[test]
    fn alexnet_theory_is_what_reproduce_records() {
        let args = TheoryArgs {
            network: NetworkArg {
                network: Some(NetworkKind::AlexNet),
            },
            conv: None,
            fc: None,
            fc8: None,
            json: false,
        };
        let arch = qcnn_model::alexnet();
        let specs: Vec<_> = args.settings().specs(&arch).into_iter().map(Some).collect();
        let cost = network_cost(&arch, &specs);
        let model = qcnn_model::synthetic::synthetic_model(3);
        let recorded = crate::reproduce::storage::theoretical_speedup(&model);
        assert_eq!(cost.speedup(), recorded);
        assert_eq!(
            crate::reproduce::storage::layer_ops_of(&cost),
            crate::reproduce::storage::layer_ops(&model)
        );
        let table = markdown(arch.name, args.settings(), &cost);
        assert!(table.contains("| **4.156×** |"), "{table}");
        assert_eq!(format!("{:.2}", (recorded * 100.0).floor() / 100.0), "4.15");
    }
}
