//! A self-contained SVG line chart of a run's throughput: committed transactions per second
//! and New-Orders per second (NOPM / 60) for each second, with labelled axes and a legend.

use std::fmt::Write as _;

use crate::report::RunReport;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 460.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 60.0;
const TPS_COLOUR: &str = "#1f77b4";
const NEW_ORDER_COLOUR: &str = "#d62728";

/// The chart of `report`'s per-second throughput.
pub fn throughput_chart(report: &RunReport) -> String {
    let tps: Vec<f64> = report.throughput.iter().map(|s| s.tps as f64).collect();
    let new_orders: Vec<f64> = report.throughput.iter().map(|s| s.new_orders as f64).collect();
    let s = &report.setup;
    let title = format!(
        "TPC-C on {}: {} warehouse(s), {} clients, {:.0} s, NOPM {:.1}",
        s.target, s.warehouses, s.clients, s.duration_secs, report.nopm
    );
    chart(&title, &[("transactions/s", TPS_COLOUR, &tps), ("New-Orders/s (NOPM/60)", NEW_ORDER_COLOUR, &new_orders)])
}

/// A line chart of series over seconds 1..=n, all on one y axis from 0.
fn chart(title: &str, series: &[(&str, &str, &[f64])]) -> String {
    let seconds = series.iter().map(|(_, _, v)| v.len()).max().unwrap_or(0).max(1);
    let top_value = series.iter().flat_map(|(_, _, v)| v.iter().copied()).fold(0.0, f64::max);
    let y_step = nice_step(top_value.max(1.0) / 5.0);
    let y_max = (top_value / y_step).ceil().max(1.0) * y_step;
    let x_step = nice_step(seconds as f64 / 10.0).max(1.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |second: f64| LEFT + plot_w * second / seconds as f64;
    let y = |value: f64| TOP + plot_h * (1.0 - value / y_max);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="{}" y="24" font-size="15" text-anchor="middle">{}</text>"#, WIDTH / 2.0, escape(title));
    let mut value = 0.0;
    while value <= y_max + y_step / 2.0 {
        let yy = y(value);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            yy + 4.0,
            format_tick(value)
        );
        value += y_step;
    }
    let mut second = 0.0;
    while second <= seconds as f64 + 0.001 {
        let xx = x(second);
        let _ = writeln!(
            svg,
            r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#333"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 5.0,
            TOP + plot_h + 18.0,
            format_tick(second)
        );
        second += x_step;
    }
    let _ = writeln!(
        svg,
        r##"<polyline points="{LEFT},{TOP} {LEFT},{bottom} {right},{bottom}" fill="none" stroke="#333"/>"##,
        bottom = TOP + plot_h,
        right = LEFT + plot_w
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds since start</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 15.0
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">per second</text>"#,
        TOP + plot_h / 2.0
    );
    for (i, (name, colour, values)) in series.iter().enumerate() {
        // Each second's value is drawn at the end of that second.
        let points: Vec<String> =
            values.iter().enumerate().map(|(s, v)| format!("{:.1},{:.1}", x(s as f64 + 1.0), y(*v))).collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            points.join(" ")
        );
        // The legend sits between the title and the plot, one entry beside the other.
        let ly = 46.0;
        let lx = LEFT + 260.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            escape(name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The step of 1, 2 or 5 times a power of ten nearest above `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// A tick label: integers without decimals, the rest with one.
fn format_tick(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 { format!("{value:.0}") } else { format!("{value:.1}") }
}

/// Escapes text for an SVG text node.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_nice() {
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(13.0), 20.0);
        assert_eq!(nice_step(420.0), 500.0);
        assert_eq!(nice_step(0.0), 1.0);
    }

    #[test]
    fn chart_has_both_lines_and_labels() {
        let svg = chart("a <b>", &[("tps", "#000", &[1.0, 5.0, 3.0]), ("new", "#f00", &[0.0, 2.0, 1.0])]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("stroke-width=\"2\"/>").count(), 4);
        assert!(svg.contains("seconds since start") && svg.contains("a &lt;b&gt;"));
        let empty = chart("none", &[("tps", "#000", &[])]);
        assert!(empty.starts_with("<svg") && !empty.contains("NaN"));
    }
}
