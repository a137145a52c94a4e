//! The chart of a TPC-H report: per query, one bar per engine (best run),
//! on a logarithmic time axis so a 0.1 s and a 10 s query both read; the
//! legend gives each engine's total. SVG, drawn with `plotters`.

use plotters::prelude::*;

use super::TpchReport;
use super::table::display_name;

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 560;

/// One colour per engine, in report order: Spark in orange, Ember in blues,
/// DataFusion in grey.
fn colour(engine: &str, index: usize) -> RGBColor {
    match engine {
        "spark" => RGBColor(230, 126, 34),
        "embedded" => RGBColor(41, 98, 255),
        "cluster" => RGBColor(0, 172, 193),
        "datafusion" => RGBColor(120, 120, 120),
        _ => {
            let (r, g, b) = Palette99::pick(index).to_rgba().rgb();
            RGBColor(r, g, b)
        }
    }
}

/// The report as an SVG document.
pub fn svg_chart(report: &TpchReport) -> Result<String, String> {
    let numbers = report.query_numbers();
    let times: Vec<f64> = report
        .engines
        .iter()
        .flat_map(|e| e.queries.iter().map(|q| q.best_s))
        .filter(|t| t.is_finite() && *t > 0.0)
        .collect();
    if numbers.is_empty() || times.is_empty() {
        return Err("the report has no timed query".into());
    }
    let lowest = times.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = times.iter().copied().fold(0.0, f64::max);
    let y_range = (lowest / 2.0)..(highest * 2.0);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let title = format!(
            "TPC-H SF{}: best run per query (log scale), {} cores",
            report.scale_factor, report.cores
        );
        let groups = numbers.len() as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0.5..groups + 0.5, y_range.clone().log_scale())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(numbers.len())
            .x_label_formatter(&|x| {
                let i = x.round() as usize;
                numbers
                    .get(i.wrapping_sub(1))
                    .map(|n| format!("Q{n}"))
                    .unwrap_or_default()
            })
            .label_style(("sans-serif", 14))
            .y_desc("seconds")
            .y_label_formatter(&|y| format!("{y}"))
            .draw()
            .map_err(|e| e.to_string())?;
        let engines = report.engines.len() as f64;
        let width = 0.8 / engines;
        for (j, engine) in report.engines.iter().enumerate() {
            let fill = colour(&engine.engine, j);
            let bars: Vec<Rectangle<(f64, f64)>> = numbers
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    let best = engine.query(*n)?.best_s;
                    let left = i as f64 + 1.0 - 0.4 + j as f64 * width;
                    Some(Rectangle::new(
                        [(left, y_range.start), (left + width, best)],
                        fill.filled(),
                    ))
                })
                .collect();
            let label = format!(
                "{} (total {:.2} s)",
                display_name(&engine.engine),
                engine.total_best_s()
            );
            chart
                .draw_series(bars)
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], fill.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{EngineReport, QueryReport};

    #[test]
    fn one_bar_per_query_and_engine() {
        let mut engines = Vec::new();
        for (name, scale) in [("spark", 10.0), ("embedded", 1.0)] {
            let mut e = EngineReport::new(name.to_string());
            for n in 1..=22 {
                e.queries
                    .push(QueryReport::new(n, vec![scale * n as f64 / 10.0], 1, None));
            }
            engines.push(e);
        }
        let svg = svg_chart(&TpchReport::new(1.0, 2, 1, engines)).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        // Spark's orange: 22 bars and the legend's swatch.
        assert_eq!(svg.matches("fill=\"#E67E22\"").count(), 23, "{svg}");
        assert!(svg.contains("\nQ22\n") && svg.contains("Spark (total 253.00 s)"));
    }

    #[test]
    fn empty_report_is_an_error() {
        let report = TpchReport::new(1.0, 2, 1, vec![EngineReport::new("spark".into())]);
        assert!(svg_chart(&report).is_err());
    }
}
