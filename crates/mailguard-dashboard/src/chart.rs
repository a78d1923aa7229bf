//! The history chart: sent, errors and refused per day as grouped bars, in inline SVG
//! drawn on the server (no script, no external resource; colours come from classes in
//! the dashboard's stylesheet).

use mailguard_store::DayStats;

use maud::{html, Markup};

const W: u32 = 760;
const H: u32 = 240;
const LEFT: u32 = 48;
const RIGHT: u32 = 8;
const TOP: u32 = 14;
const BOTTOM: u32 = 40;

/// Rounds the largest value up to a "nice" axis maximum (1, 2, 5 × 10^n).
fn axis_max(max: u64) -> u64 {
    if max <= 5 {
        return 5;
    }
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if step.saturating_mul(m) >= max {
                return step * m;
            }
        }
        step = step.saturating_mul(10);
    }
}

/// The SVG element for `days` (oldest first).
pub fn history_svg(days: &[DayStats]) -> Markup {
    let max = days
        .iter()
        .flat_map(|d| [d.sent, d.errors, d.refused])
        .max()
        .unwrap_or(0);
    let top = axis_max(max);
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let n = days.len().max(1) as u32;
    let slot = plot_w as f64 / n as f64;
    let bar = (slot / 3.6).max(1.0);
    let y_of = |v: u64| TOP as f64 + plot_h as f64 * (1.0 - v as f64 / top as f64);
    let total = |f: fn(&DayStats) -> u64| days.iter().map(f).sum::<u64>();
    let f1 = |v: f64| format!("{v:.1}");
    html! {
        svg #history-chart class="chart" xmlns="http://www.w3.org/2000/svg"
            viewBox={ "0 0 " (W) " " (H) } width=(W) height=(H) role="img"
            aria-labelledby="chart-title" data-days=(days.len()) {
            title #chart-title {
                "Mail per day over the last " (days.len()) " days: " (total(|d| d.sent)) " sent, "
                (total(|d| d.errors)) " errors, " (total(|d| d.refused)) " refused"
            }
            // Grid lines and their values: 0, half, top.
            @for v in [0, top / 2, top] {
                line.grid x1=(LEFT) y1=(f1(y_of(v))) x2=(W - RIGHT) y2=(f1(y_of(v))) {}
                text.axis x=(LEFT - 6) y=(f1(y_of(v) + 4.0)) text-anchor="end" { (v) }
            }
            @for (i, d) in days.iter().enumerate() {
                @let x0 = LEFT as f64 + slot * i as f64 + (slot - 3.0 * bar) / 2.0;
                @for (k, (class, v)) in [("sent", d.sent), ("errors", d.errors), ("refused", d.refused)].into_iter().enumerate() {
                    @let y = y_of(v);
                    @let h = (TOP as f64 + plot_h as f64 - y).max(0.0);
                    rect class={ "bar " (class) } data-day=(d.day) data-value=(v) x=(f1(x0 + bar * k as f64))
                        y=(f1(y)) width=(f1(bar)) height=(f1(h)) {
                        title { (d.day) ": " (v) " " (class) }
                    }
                }
                // A date label every 5th day and on the last day, as MM-DD.
                @if i % 5 == 0 || i + 1 == days.len() {
                    @let label = d.day.to_string();
                    text.axis x=(f1(LEFT as f64 + slot * (i as f64 + 0.5))) y=(H - BOTTOM + 16) text-anchor="middle" {
                        (label.get(5..).unwrap_or(&label))
                    }
                }
            }
            // Legend.
            @for (k, name) in ["sent", "errors", "refused"].into_iter().enumerate() {
                @let x = LEFT + 110 * k as u32;
                rect class={ "bar " (name) } x=(x) y=(H - 16) width="12" height="12" {}
                text.legend x=(x + 18) y=(H - 6) { (name) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailguard_core::rate::Day;

    #[test]
    fn axis_is_nice() {
        assert_eq!(axis_max(0), 5);
        assert_eq!(axis_max(7), 10);
        assert_eq!(axis_max(11), 20);
        assert_eq!(axis_max(21), 50);
        assert_eq!(axis_max(500), 500);
        assert_eq!(axis_max(501), 1000);
    }

    #[test]
    fn draws_three_bars_per_day() {
        let days: Vec<DayStats> = (0..30)
            .map(|i| DayStats {
                day: Day(20_000 + i),
                sent: i as u64,
                errors: 1,
                refused: 0,
                held: 0,
            })
            .collect();
        let svg = history_svg(&days).into_string();
        assert_eq!(svg.matches("class=\"bar sent\" data-day").count(), 30);
        assert_eq!(svg.matches("class=\"bar errors\" data-day").count(), 30);
        assert_eq!(svg.matches("class=\"bar refused\" data-day").count(), 30);
        assert!(svg.contains("435 sent, 30 errors, 0 refused"));
        assert!(!svg.contains("style="));
    }
}
