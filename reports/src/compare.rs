//! A comparison of two sets of runs ([`qcnn_results::compare`]) as text: the terminal table
//! of `qcnn compare`, the Markdown of `--markdown` (a pull-request comment), and the
//! comparison section of `qcnn report --compare`.

use qcnn_results::compare::{Change, Comparison, Quantity, RunRef, Verdict};

use crate::doc::{self, Align, Block, Figure, Table};

/// The Markdown a person reads in a terminal: everything, every row.
pub fn comparison_text(c: &Comparison) -> String {
    doc::markdown(&comparison_blocks(c, 1, &[]))
}

/// Markdown for a pull-request comment: the verdict, what differs, the whole-network table
/// and the flagged layers in view, every layer row folded in a `<details>` element.
pub fn comparison_markdown(c: &Comparison) -> String {
    let mut blocks = vec![Block::Heading(2, format!("qcnn compare: {}", headline(c)))];
    blocks.extend(preamble(c));
    blocks.push(Block::Table(table(
        c.changes.iter().filter(|ch| !is_layer(ch)),
    )));
    let flagged: Vec<&Change> = c
        .changes
        .iter()
        .filter(|ch| is_layer(ch) && ch.verdict != Verdict::WithinNoise)
        .collect();
    if !flagged.is_empty() {
        blocks.push(Block::Heading(
            3,
            "Layers beyond the noise threshold".into(),
        ));
        blocks.push(Block::Table(table(flagged.into_iter())));
    }
    let mut md = doc::markdown(&blocks);
    let layers: Vec<&Change> = c.changes.iter().filter(|ch| is_layer(ch)).collect();
    if !layers.is_empty() {
        md.push_str(&format!(
            "<details><summary>All {} layer rows</summary>\n\n{}\n</details>\n",
            layers.len(),
            table(layers.into_iter()).markdown()
        ));
    }
    md
}

/// The comparison as document blocks under a heading of `level`, with `figures` (the change
/// charts) at the end.
pub fn comparison_blocks(c: &Comparison, level: u8, figures: &[Figure]) -> Vec<Block> {
    let mut b = vec![Block::Heading(
        level,
        format!("Comparison: {}", headline(c)),
    )];
    b.extend(preamble(c));
    b.push(Block::Heading(level + 1, "Whole network".into()));
    b.push(Block::Table(table(
        c.changes.iter().filter(|ch| !is_layer(ch)),
    )));
    if c.changes.iter().any(is_layer) {
        b.push(Block::Heading(level + 1, "Per layer".into()));
        b.push(Block::Para(
            "A layer's time is its mean over the images of one repeat (layers.csv), so its \
             median and interval are over repeats: with few repeats, its interval is no \
             wider than the repeats' own spread. Phases: table = look-up table build, \
             lookup = look-ups."
                .into(),
        ));
        b.push(Block::Table(table(
            c.changes.iter().filter(|ch| is_layer(ch)),
        )));
    }
    b.extend(figures.iter().cloned().map(Block::Figure));
    b
}

/// "2 regressed, 1 improved" or "no regression".
fn headline(c: &Comparison) -> String {
    let t = &c.tally;
    match (t.regressed, t.improved) {
        (0, 0) => "no regression, no improvement".into(),
        (0, i) => format!("no regression, {i} improved"),
        (r, 0) => format!("{r} REGRESSED"),
        (r, i) => format!("{r} REGRESSED, {i} improved"),
    }
}

/// Which runs, what makes them incomparable, what changed, notes, and how it was judged.
fn preamble(c: &Comparison) -> Vec<Block> {
    let mut b = vec![Block::Facts(vec![
        ("BASE".into(), side(&c.base)),
        ("NEW".into(), side(&c.new)),
    ])];
    for d in &c.not_comparable {
        b.push(Block::Warning(format!(
            "not comparable, compared anyway (--allow-different): {} differs: BASE {}, NEW {}",
            d.what, d.base, d.new
        )));
    }
    if !c.changed.is_empty() {
        b.push(Block::Para("What changed from BASE to NEW:".into()));
        b.push(Block::Facts(
            c.changed
                .iter()
                .map(|d| (d.what.clone(), format!("{} → {}", d.base, d.new)))
                .collect(),
        ));
    }
    for note in &c.notes {
        if note.contains("incomplete") {
            b.push(Block::Warning(note.clone()));
        } else {
            b.push(Block::Para(format!("Note: {note}.")));
        }
    }
    let t = &c.tally;
    let o = &c.options;
    b.push(Block::Para(format!(
        "{} regressed, {} improved, {} within noise of {} compared quantities. A change is \
         NEW median / BASE median − 1; regressed or improved only when its whole interval \
         lies beyond the noise threshold of ±{}. Confidence {} for the whole comparison \
         (each of the {} intervals at {:.2}%), from {} bootstrap resamples of repeats and \
         images, seed {}.",
        t.regressed,
        t.improved,
        t.within_noise,
        c.changes.len(),
        percent(o.threshold),
        percent(o.confidence),
        c.changes.len(),
        100.0 * c.interval_confidence,
        o.resamples,
        o.seed
    )));
    b
}

/// "20261127T100000Z-cmplt1 (commit 1a2b3c4d5e6f, 5 of 5 repeats × 100 images)", one per run.
fn side(runs: &[RunRef]) -> String {
    runs.iter()
        .map(|r| {
            let commit = r.commit.as_deref().map_or("no git".to_string(), |c| {
                format!(
                    "commit {}{}",
                    c.get(..12).unwrap_or(c),
                    if r.dirty { " dirty" } else { "" }
                )
            });
            let incomplete = if r.complete { "" } else { ", incomplete" };
            format!(
                "{} ({commit}, {} of {} repeats{incomplete})",
                r.run_id, r.completed_repeats, r.planned_repeats
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn is_layer(ch: &Change) -> bool {
    matches!(ch.quantity, Quantity::LayerTime { .. })
}

/// `| Quantity | BASE | NEW | Change [interval] | Verdict |`.
fn table<'a>(changes: impl Iterator<Item = &'a Change>) -> Table {
    let mut t = Table::numeric([
        "Mode / layer",
        "BASE",
        "NEW",
        "Change [interval]",
        "Verdict",
    ]);
    t.align[4] = Align::Left;
    for ch in changes {
        t.push(vec![
            ch.quantity.label(),
            value(ch.base, ch.unit),
            value(ch.new, ch.unit),
            format!(
                "{} [{}, {}]",
                signed(ch.change),
                signed(ch.low),
                signed(ch.high)
            ),
            verdict(ch.verdict).into(),
        ]);
    }
    t
}

/// Shouted when it matters: a regression is what a reader scans for.
pub fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Regressed => "REGRESSED",
        Verdict::Improved => "improved",
        Verdict::WithinNoise => "within noise",
    }
}

/// ms with four significant digits at least down to 0.0001 ms; speed-ups as "4.08×".
fn value(v: f64, unit: &str) -> String {
    match unit {
        "×" => format!("{v:.2}×"),
        _ if v >= 1.0 => format!("{v:.3} ms"),
        _ if v >= 0.01 => format!("{v:.4} ms"),
        _ => format!("{v:.5} ms"),
    }
}

/// A relative change as a signed percentage: "+10.2%", "−3.1%".
fn signed(v: f64) -> String {
    crate::charts::signed_percent(100.0 * v, 1)
}

fn percent(v: f64) -> String {
    let p = 100.0 * v;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(value(28.43, "ms"), "28.430 ms");
        assert_eq!(value(0.0042, "ms"), "0.00420 ms");
        assert_eq!(value(4.081, "×"), "4.08×");
        assert_eq!(signed(0.1023), "+10.2%");
        assert_eq!(signed(-0.031), "−3.1%");
        assert_eq!(signed(0.0), "0.0%");
        assert_eq!(percent(0.02), "2%");
        assert_eq!(percent(0.025), "2.5%");
    }
}
