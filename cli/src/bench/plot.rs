//! `aio bench --plot FILE.svg`: the run as a picture, one row per job.
//!
//! - Left: each engine's completion latency against the percentile, both on log scales — the
//!   percentile axis in "nines" (50%, 90%, 99%, 99.9%...), as fio users plot HDR histograms — so
//!   the median and the tail read off one curve.
//! - Right: each engine's IOPS as a bar, labelled with its ratio to `sync` (the table's
//!   `vs sync` column).
//!
//! Drawn with plotters' SVG backend, which writes text as SVG `<text>` (no fonts needed here;
//! the viewer renders them).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::{EngineReport, Report};
use crate::util::{human_ns, path_error};

/// Pixels per job row, and the picture's width.
const ROW_HEIGHT: u32 = 460;
const WIDTH: u32 = 1280;

/// Each engine's color, the same in both charts.
fn color(engine: &str) -> RGBColor {
    match engine {
        "uring" => RGBColor(31, 119, 180),
        "kernel" => RGBColor(255, 127, 14),
        "pool" => RGBColor(44, 160, 44),
        "posix" => RGBColor(148, 103, 189),
        "file" => RGBColor(140, 86, 75),
        "sync" => RGBColor(110, 110, 110),
        _ => RGBColor(214, 39, 40),
    }
}

/// `x` on the "nines" axis (1/(1-p)) as a percentile: `1` is 0%, `10` 90%, `1000` 99.9%.
fn percentile_label(x: f64) -> String {
    let pct = 100.0 * (1.0 - 1.0 / x.max(1.0));
    let mut s = format!("{pct:.4}");
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    format!("{s}%")
}

/// Writes the picture of `report` to `path`.
pub fn write(report: &Report, path: &Path) -> Result<(), String> {
    let svg = draw(report).map_err(|e| format!("cannot draw {}: {e}", path.display()))?;
    std::fs::write(path, svg).map_err(|e| path_error("cannot write", path, &e))
}

/// The SVG text of the picture.
pub fn draw(report: &Report) -> Result<String, Box<dyn std::error::Error>> {
    let mut svg = String::new();
    {
        let rows = report.jobs.len().max(1) as u32;
        let root =
            SVGBackend::with_string(&mut svg, (WIDTH, ROW_HEIGHT * rows + 40)).into_drawing_area();
        root.fill(&WHITE)?;
        let (title, body) = root.split_vertically(40);
        title.titled(
            &format!(
                "aio bench {}: {} ({})",
                report.version, report.file.path, report.file.filesystem
            ),
            ("sans-serif", 18),
        )?;
        for (row, job) in body.split_evenly((rows as usize, 1)).iter().zip(&report.jobs) {
            let measured: Vec<&EngineReport> =
                job.engines.iter().filter(|e| e.status == "ok").collect();
            let (left, right) = row.split_horizontally(WIDTH * 3 / 5);
            latency_chart(&left, &job.title, &measured)?;
            iops_chart(&right, &measured)?;
        }
        root.present()?;
    }
    Ok(svg)
}

fn latency_chart(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    engines: &[&EngineReport],
) -> Result<(), Box<dyn std::error::Error>> {
    let points = engines.iter().flat_map(|e| e.percentiles.iter().map(|&(_, ns)| ns));
    let (lo, hi) = points.fold((u64::MAX, 1u64), |(lo, hi), v| (lo.min(v.max(1)), hi.max(v)));
    let (lo, hi) = if lo > hi { (1.0, 1e6) } else { (lo as f64 / 1.5, hi as f64 * 1.5) };
    let x_max = engines
        .iter()
        .filter_map(|e| e.percentiles.last())
        .map(|&(p, _)| 1.0 / (1.0 - p).max(1e-9))
        .fold(10.0f64, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{title}: completion latency"), ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(72)
        .build_cartesian_2d((1.0f64..x_max).log_scale(), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile of requests")
        .y_desc("latency (queue to reap)")
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| human_ns(*y))
        .label_style(("sans-serif", 12))
        .draw()?;
    for e in engines {
        let c = color(&e.engine);
        let curve: Vec<(f64, f64)> = e
            .percentiles
            .iter()
            .map(|&(p, ns)| (1.0 / (1.0 - p).max(1e-9), ns.max(1) as f64))
            .collect();
        chart
            .draw_series(LineSeries::new(curve, c.stroke_width(2)))?
            .label(e.engine.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

fn iops_chart(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    engines: &[&EngineReport],
) -> Result<(), Box<dyn std::error::Error>> {
    let top = engines.iter().map(|e| e.iops).fold(1.0f64, f64::max) * 1.22;
    let n = engines.len().max(1);
    let names: Vec<String> = engines.iter().map(|e| e.engine.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption("IOPS (ratio to sync)", ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(72)
        // An integer range as segments includes its end: n engines are 0..n-1.
        .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc("IOPS")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 12))
        .draw()?;
    chart.draw_series(engines.iter().enumerate().map(|(i, e)| {
        let mut bar = Rectangle::new(
            [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), e.iops)],
            color(&e.engine).filled(),
        );
        bar.set_margin(0, 0, 14, 14);
        bar
    }))?;
    // Two short lines over each bar (IOPS, then the ratio), so neighbours' labels never meet.
    let labels = engines.iter().enumerate().flat_map(|(i, e)| {
        let ratio = e.vs_sync.map(|r| (format!("{r:.2}x"), e.iops + top * 0.07));
        [Some((format!("{:.0}", e.iops), e.iops + top * 0.02)), ratio]
            .into_iter()
            .flatten()
            .map(move |(text, y)| (i, text, y))
    });
    chart.draw_series(labels.map(|(i, text, y)| {
        Text::new(
            text,
            (SegmentValue::CenterOf(i), y),
            TextStyle::from(("sans-serif", 13).into_font())
                .pos(Pos::new(HPos::Center, VPos::Bottom)),
        )
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::percentile_label;

    #[test]
    fn percentile_labels() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(2.0), "50%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(1e5), "99.999%");
    }
}
