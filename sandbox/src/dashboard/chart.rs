//! The dashboard's chart: lookups by status per interval over the last
//! minutes, as an inline SVG (no script, no front-end build).
//!
//! A sampler (started by [`crate::initializers::metrics`]) reads the lookup
//! counters every [`INTERVAL`] into a [`History`] that keeps [`WINDOW`] of
//! them; the chart draws the differences between consecutive points.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use super::stats::Totals;

/// How often the sampler reads the counters.
pub const INTERVAL: Duration = Duration::from_secs(5);
/// How far back the chart reaches.
pub const WINDOW: Duration = Duration::from_secs(600);

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// When, in seconds on the sampler's clock (since it started).
    pub at: f64,
    /// The totals then.
    pub totals: Totals,
}

/// The last [`WINDOW`] of points, oldest first: a ring buffer.
#[derive(Debug, Default)]
pub struct History {
    points: Mutex<VecDeque<Point>>,
}

impl History {
    /// The most points kept: a window's worth of intervals, and the point
    /// before the first of them.
    pub const CAPACITY: usize = (WINDOW.as_secs() / INTERVAL.as_secs()) as usize + 1;

    /// Adds a point, dropping the oldest once full.
    pub fn push(&self, point: Point) {
        let mut points = self.points.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if points.len() == Self::CAPACITY {
            points.pop_front();
        }
        points.push_back(point);
    }

    /// The points, oldest first.
    pub fn points(&self) -> Vec<Point> {
        self.points.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().copied().collect()
    }
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 24.0;

/// One series: its name (and class), colour and value.
type Series = (&'static str, &'static str, fn(&Totals) -> u64);

/// The three series.
const SERIES: [Series; 3] =
    [("hit", "#2e7d32", |t| t.hits), ("stale", "#ef6c00", |t| t.stales), ("miss", "#c62828", |t| t.misses)];

/// The chart of `points` (oldest first) at time `now` (on their clock): per
/// interval, the lookups of each status, as three polylines over the last
/// [`WINDOW`], with a legend and the scale.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn svg(points: &[Point], now: f64) -> String {
    let window = WINDOW.as_secs_f64();
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let start = now - window;
    // Each interval's lookups, at the time it ended.
    let deltas: Vec<(f64, Totals)> = points
        .windows(2)
        .filter(|pair| pair[1].at >= start)
        .map(|pair| (pair[1].at, pair[1].totals.since(pair[0].totals)))
        .collect();
    let max = deltas.iter().flat_map(|(_, d)| SERIES.map(|(.., value)| value(d))).max().unwrap_or(0).max(1);
    let x = |at: f64| LEFT + ((at - start) / window).clamp(0.0, 1.0) * plot_w;
    let y = |value: u64| TOP + plot_h - value as f64 / max as f64 * plot_h;

    let mut svg = format!(
        "<svg id=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-labelledby=\"chart-title\">\n\
         <title id=\"chart-title\">Lookups per {interval} s by status, last {minutes} minutes</title>\n",
        interval = INTERVAL.as_secs(),
        minutes = WINDOW.as_secs() / 60,
    );
    // The frame, the scale (0 and the largest count) and the time axis.
    let (bottom, right) = (TOP + plot_h, LEFT + plot_w);
    let _ = writeln!(
        svg,
        "<rect class=\"frame\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" \
         stroke=\"#ccc\"/>"
    );
    let _ = writeln!(svg, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max}</text>", LEFT - 4.0, TOP + 4.0);
    let _ = writeln!(svg, "<text x=\"{}\" y=\"{bottom}\" text-anchor=\"end\">0</text>", LEFT - 4.0);
    let minutes = WINDOW.as_secs() / 60;
    for (at, label) in [(LEFT, format!("\u{2212}{minutes} min")), (right, "now".to_owned())] {
        let anchor = if at == LEFT { "start" } else { "end" };
        let _ =
            writeln!(svg, "<text x=\"{at}\" y=\"{}\" text-anchor=\"{anchor}\">{label}</text>", HEIGHT - 6.0);
    }
    // The legend, above the plot.
    for (i, (name, colour, _)) in SERIES.iter().enumerate() {
        let lx = LEFT + 90.0 * i as f64;
        let _ = writeln!(
            svg,
            "<g class=\"legend\"><rect x=\"{lx}\" y=\"8\" width=\"12\" height=\"12\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"18\">{name}</text></g>",
            lx + 16.0
        );
    }
    if deltas.is_empty() {
        let _ = writeln!(
            svg,
            "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">Collecting: one point every {} s</text>",
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0,
            INTERVAL.as_secs()
        );
    }
    for (name, colour, value) in SERIES {
        let coords: Vec<String> =
            deltas.iter().map(|(at, delta)| format!("{:.1},{:.1}", x(*at), y(value(delta)))).collect();
        let _ = writeln!(
            svg,
            "<polyline class=\"{name}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            coords.join(" ")
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at: f64, hits: u64, stales: u64, misses: u64) -> Point {
        Point { at, totals: Totals { hits, stales, misses } }
    }

    #[test]
    fn the_history_keeps_a_window_of_points() {
        let history = History::default();
        for i in 0..History::CAPACITY + 5 {
            history.push(point(i as f64 * 5.0, i as u64, 0, 0));
        }
        let points = history.points();
        assert_eq!(points.len(), History::CAPACITY);
        assert_eq!(History::CAPACITY, 121);
        assert_eq!(points[0].totals.hits, 5);
        assert_eq!(points.last().unwrap().totals.hits, History::CAPACITY as u64 + 4);
    }

    #[test]
    fn draws_the_deltas_per_interval() {
        // Three points at the end of the window: two intervals.
        let points = [point(590.0, 10, 1, 0), point(595.0, 14, 1, 2), point(600.0, 22, 3, 2)];
        let svg = svg(&points, 600.0);
        insta::assert_snapshot!(svg);
        assert!(svg.starts_with("<svg id=\"chart\"") && svg.ends_with("</svg>"));
        // hit: 4 then 8 (the scale's top); x: 595 s and 600 s of a window 0..600 s.
        assert!(svg.contains("class=\"hit\" fill=\"none\" stroke=\"#2e7d32\" stroke-width=\"2\" points=\"623.1,102.0 628.0,28.0\""), "{svg}");
        assert!(svg.contains("points=\"623.1,176.0 628.0,139.0\""), "stale: 0 then 2\n{svg}");
        assert!(!svg.contains("Collecting"));
    }

    #[test]
    fn a_counter_that_went_back_counts_zero_and_old_points_are_left_out() {
        // The window is 105..705 s: the interval ending at 50 s is left out;
        // the one ending at 700 s went back from 120 to 5.
        let points =
            [point(0.0, 100, 0, 0), point(50.0, 120, 0, 0), point(700.0, 5, 0, 0), point(705.0, 6, 0, 0)];
        let svg = svg(&points, 705.0);
        assert!(
            svg.contains("stroke=\"#2e7d32\" stroke-width=\"2\" points=\"623.1,176.0 628.0,28.0\""),
            "{svg}"
        );
    }

    #[test]
    fn says_when_there_is_nothing_to_draw_yet() {
        for points in [&[][..], &[point(0.0, 1, 1, 1)][..]] {
            let svg = svg(points, 3.0);
            assert!(svg.contains("Collecting: one point every 5 s"), "{svg}");
            assert!(svg.contains("points=\"\""), "{svg}");
        }
    }
}
