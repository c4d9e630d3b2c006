//! Renders run folders into a report folder, as `qcnn report` does:
//! `cargo run -p qcnn-reports --example render -- OUT RUN_DIR...`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: render OUT RUN_DIR...")?);
    let runs: Vec<PathBuf> = args.map(PathBuf::from).collect();
    let files = qcnn_reports::render(&runs, &out)?;
    println!("{}", files.markdown.display());
    println!("{}", files.html.display());
    for chart in &files.charts {
        println!("{}", chart.png.display());
    }
    Ok(())
}
