//! `qcnn reproduce --peers` end to end on the embedded default: every requested peer gets a
//! column with a time, a speed-up and its own process's memory (the worker's for the Python
//! peers, a child process's for tract), in `repeats.csv`, `meta.json`, `--json` and the
//! printed memory table; never the harness's memory.
//!
//! A Python peer that is not installed here (`pip install -r ci/peer-requirements.txt`,
//! interpreter `$QCNN_PYTHON` else `python3`) is skipped visibly; one that failed is an error.

use std::process::{Command, Output};

use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qcnn"))
        .args(args)
        .output()
        .expect("qcnn starts")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A short run with `peers` and `--json`: the summary, the run as stored, and stderr.
fn reproduce_with(peers: &str) -> (Value, qcnn_results::Run) {
    let root = tempfile::tempdir().unwrap();
    let out = run(&[
        "reproduce",
        "--repeats",
        "2",
        "--images",
        "2",
        "--warmup",
        "1",
        "--modes",
        "dense",
        "--peers",
        peers,
        "--json",
        "--results",
        root.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let runs = qcnn_results::list_runs(root.path()).unwrap();
    let run = qcnn_results::read_run(&runs[0]).expect("the run reads");
    (summary, run)
}

/// The peers this machine could time, after skipping (visibly) the ones not installed.
fn ready_peers(run: &qcnn_results::Run, requested: &[&str]) -> Vec<String> {
    let mut ready = Vec::new();
    for name in requested {
        let status = &run.meta.notes[&format!("peer.{name}.status")];
        let reason = run.meta.notes.get(&format!("peer.{name}.reason"));
        match status.as_str() {
            "ready" => ready.push(name.to_string()),
            "unavailable" if !qcnn_baselines::peers::required_here(name) => {
                eprintln!("SKIPPED: peer {name} not installed: {reason:?}")
            }
            other => panic!("peer {name} is {other}: {reason:?} {:?}", run.meta.notes),
        }
    }
    ready
}

#[test]
fn python_peers_report_their_workers_memory() {
    let requested = ["onnxruntime", "openvino", "ncnn", "ncnn-default"];
    let (summary, run) = reproduce_with(&requested.join(","));
    let dense = &summary["modes"]["dense"];
    for name in ready_peers(&run, &requested) {
        let m = &summary["modes"][&name];
        let peak = m["peak_rss_bytes"]
            .as_u64()
            .expect("modes.<peer>.peak_rss_bytes");
        let idle = m["idle_peak_rss_bytes"].as_u64().expect("the idle figure");
        let load = m["load_peak_rss_bytes"].as_u64().expect("the load figure");
        assert!(idle < load && peak > 100_000_000, "{name}: {m}");
        assert!(
            summary["speedup"][&name].as_f64().is_some_and(|s| s > 0.0),
            "{summary}"
        );
        // The worker's figures, not the harness's (which holds the dense network and every
        // other peer's outputs: far above an idle interpreter).
        assert!(idle < 150_000_000, "{name}: idle {idle}");
        let info = run.meta.modes.iter().find(|m| m.mode == name).unwrap();
        let process = &info.memory.as_ref().expect("meta.json memory").process;
        assert!(process.starts_with("peer worker"), "{process}");
        assert!(run
            .repeats
            .iter()
            .filter(|r| r.mode == name)
            .all(|r| r.peak_rss_bytes.is_some()));
        assert!(run.meta.notes[&format!("peer.{name}.memory")].contains("worker"));
    }
    // Our own mode is still probed in a child process.
    assert!(dense["idle_peak_rss_bytes"].as_u64().is_some(), "{dense}");
    let info = &run.meta.modes[0];
    assert_eq!(
        info.memory.as_ref().unwrap().process,
        "child process (qcnn probe-memory)"
    );
}

#[test]
fn memory_table_shows_every_column_and_where_it_was_measured() {
    let root = tempfile::tempdir().unwrap();
    let out = run(&[
        "reproduce",
        "--repeats",
        "1",
        "--images",
        "2",
        "--warmup",
        "0",
        "--modes",
        "dense,qcnn",
        "--peers",
        "ncnn",
        "--results",
        root.path().to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let header = stdout
        .lines()
        .find(|l| l.starts_with("| Mode") && l.contains("Peak RSS"))
        .unwrap_or_else(|| panic!("no memory table in {stdout}"));
    assert!(
        header.contains("Process idle") && header.contains("Measured in"),
        "{header}"
    );
    // A memory-table row: its first cell is the mode, its last where it was measured.
    let row = |mode: &str| {
        stdout
            .lines()
            .find(|l| {
                l.split('|').nth(1).map(str::trim) == Some(mode)
                    && (l.contains("child process") || l.contains("peer worker"))
            })
            .map(str::to_string)
    };
    let dense = row("dense").unwrap_or_else(|| panic!("{stdout}"));
    assert!(dense.contains("child process"), "{dense}");
    if let Some(ncnn) = row("ncnn") {
        assert!(
            ncnn.contains("peer worker") && !ncnn.contains("| – |"),
            "{ncnn}"
        );
    } else {
        assert!(
            !qcnn_baselines::peers::required_here("ncnn"),
            "ncnn is required here but has no row: {stdout}"
        );
        eprintln!("SKIPPED: peer ncnn not installed (no ncnn row)");
    }
}

#[cfg(feature = "tract")]
#[test]
fn tract_is_probed_in_a_child_process() {
    let (summary, run) = reproduce_with("tract");
    assert_eq!(ready_peers(&run, &["tract"]), ["tract"]);
    let m = &summary["modes"]["tract"];
    assert!(
        m["peak_rss_bytes"]
            .as_u64()
            .is_some_and(|b| b > 100_000_000),
        "{m}"
    );
    assert!(m["idle_peak_rss_bytes"].as_u64().is_some(), "{m}");
    let info = run.meta.modes.iter().find(|m| m.mode == "tract").unwrap();
    assert_eq!(
        info.memory.as_ref().unwrap().process,
        "child process (qcnn probe-memory)"
    );
}

#[cfg(not(feature = "tract"))]
#[test]
fn tract_is_unavailable_without_the_feature() {
    let (_, run) = reproduce_with("tract");
    assert_eq!(run.meta.notes["peer.tract.status"], "unavailable");
    assert!(run.meta.notes["peer.tract.reason"].contains("--features tract"));
    eprintln!("SKIPPED: tract peer not in this build (cargo test --features tract runs it)");
}
