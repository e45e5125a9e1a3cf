//! Plain-text tables sized to the terminal. When a table is too wide, its shrinkable columns give
//! way one after the other (highest priority first): a column whose cells have a compact form
//! switches to it ("in 4m" instead of "14:05:00+01:00 (in 4m)"), then it is cut (with `…`) down
//! to its minimum. If that is not enough, long identifying cells (timer names) are cut to
//! [`IDENT_MIN`] characters, then shrinkable columns are left out (least important first), then
//! the others from the right; no line is ever wider than the limit.

use super::style::{Color, Style};

const GAP: usize = 2;

/// What a cut identifying cell keeps before other columns are left out: enough of a timer name
/// to recognise it.
const IDENT_MIN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A column: its header, alignment, and how it gives way when the table is too wide.
#[derive(Debug, Clone)]
pub struct Column {
    pub header: String,
    pub align: Align,
    /// 0: never shortened; otherwise higher numbers are shortened first.
    pub shrink: u8,
    /// Narrowest it may become when shortened.
    pub min: usize,
}

impl Column {
    pub fn left(header: impl Into<String>) -> Column {
        let header = header.into();
        Column {
            min: text_width(&header),
            header,
            align: Align::Left,
            shrink: 0,
        }
    }

    pub fn right(header: impl Into<String>) -> Column {
        Column {
            align: Align::Right,
            ..Column::left(header)
        }
    }

    /// Lets the column be shortened, down to `min` characters, in order `priority` (higher
    /// first).
    pub fn shrink(mut self, priority: u8, min: usize) -> Column {
        self.shrink = priority;
        self.min = min;
        self
    }
}

/// A cell: its text, an optional compact form, and an optional colour.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub text: String,
    pub compact: Option<String>,
    pub color: Option<Color>,
}

impl Cell {
    pub fn new(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            compact: None,
            color: None,
        }
    }

    pub fn colored(text: impl Into<String>, color: Option<Color>) -> Cell {
        Cell {
            color,
            ..Cell::new(text)
        }
    }

    /// What the cell shows when its column must be narrower.
    pub fn or_compact(mut self, compact: impl Into<String>) -> Cell {
        self.compact = Some(compact.into());
        self
    }

    fn shown(&self, compact: bool) -> &str {
        match (&self.compact, compact) {
            (Some(short), true) => short,
            _ => &self.text,
        }
    }
}

/// How each column is shown: its width, whether its cells use their compact form, and whether
/// it is shown at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub widths: Vec<usize>,
    pub compact: Vec<bool>,
    pub shown: Vec<bool>,
}

impl Layout {
    /// The width of the shown columns with the gaps between them.
    fn total(&self) -> usize {
        let shown = self.shown.iter().filter(|&&s| s).count();
        self.widths
            .iter()
            .zip(&self.shown)
            .filter(|(_, &s)| s)
            .map(|(w, _)| w)
            .sum::<usize>()
            + GAP * shown.saturating_sub(1)
    }

    /// Narrows column `i` towards `floor` by as much as the table is over `limit`.
    fn narrow(&mut self, i: usize, floor: usize, limit: usize) {
        let over = self.total().saturating_sub(limit);
        let room = self.widths[i].saturating_sub(floor);
        self.widths[i] -= room.min(over);
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell::new(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::new(text)
    }
}

#[derive(Debug, Clone)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(columns: Vec<Column>) -> Table {
        Table {
            columns,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    fn natural(&self, i: usize, compact: bool) -> usize {
        self.rows
            .iter()
            .filter_map(|row| row.get(i))
            .map(|cell| text_width(cell.shown(compact)))
            .chain(std::iter::once(text_width(&self.columns[i].header)))
            .max()
            .unwrap_or(0)
    }

    /// The layout that fits `limit` characters (when given) as far as shrinking allows.
    pub fn layout(&self, limit: Option<usize>) -> Layout {
        let n = self.columns.len();
        let mut layout = Layout {
            widths: (0..n).map(|i| self.natural(i, false)).collect(),
            compact: vec![false; n],
            shown: vec![true; n],
        };
        let Some(limit) = limit else {
            return layout;
        };
        let total = |w: &[usize]| w.iter().sum::<usize>() + GAP * w.len().saturating_sub(1);
        let mut order: Vec<usize> = (0..n).filter(|&i| self.columns[i].shrink > 0).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(self.columns[i].shrink));
        for &i in &order {
            if total(&layout.widths) <= limit {
                break;
            }
            let has_compact = self
                .rows
                .iter()
                .any(|row| row.get(i).is_some_and(|c| c.compact.is_some()));
            if has_compact {
                layout.compact[i] = true;
                layout.widths[i] = self.natural(i, true);
            }
            let over = total(&layout.widths).saturating_sub(limit);
            let min = self.columns[i]
                .min
                .max(text_width(&self.columns[i].header))
                .max(1);
            let room = layout.widths[i].saturating_sub(min);
            layout.widths[i] -= room.min(over);
        }
        // Shrinking goes a column at a time, so it may have taken more than needed: give the
        // room left back, most important column first.
        for &i in order.iter().rev() {
            let spare = limit.saturating_sub(total(&layout.widths));
            if spare == 0 {
                break;
            }
            if layout.compact[i] {
                let full = self.natural(i, false);
                if full <= layout.widths[i] + spare {
                    layout.compact[i] = false;
                    layout.widths[i] = full;
                    continue;
                }
            }
            let natural = self.natural(i, layout.compact[i]);
            layout.widths[i] += natural.saturating_sub(layout.widths[i]).min(spare);
        }
        if total(&layout.widths) > limit {
            self.make_fit(&mut layout, &order, limit);
        }
        layout
    }

    /// The steps beyond shrinking, for a table still wider than `limit`: cut identifying cells
    /// to [`IDENT_MIN`], leave shrinkable columns out (`order`: least important first), then
    /// the other columns from the right, and finally cut the first column to the limit.
    fn make_fit(&self, layout: &mut Layout, order: &[usize], limit: usize) {
        for i in 0..self.columns.len() {
            let column = &self.columns[i];
            if column.shrink == 0 && column.align == Align::Left {
                layout.narrow(i, IDENT_MIN.max(text_width(&column.header)), limit);
            }
        }
        let from_the_right: Vec<usize> = (1..self.columns.len()).rev().collect();
        for &i in order.iter().chain(&from_the_right) {
            if layout.total() <= limit {
                return;
            }
            layout.shown[i] = false;
        }
        if !layout.widths.is_empty() {
            layout.narrow(0, 0, limit);
        }
    }

    /// The table as lines (header first), fitted to `limit`.
    pub fn render(&self, style: &Style, limit: Option<usize>) -> Vec<String> {
        let layout = self.layout(limit);
        let widths = &layout.widths;
        let last = (0..self.columns.len())
            .rev()
            .find(|&i| layout.shown[i])
            .unwrap_or(0);
        let mut lines = Vec::with_capacity(self.rows.len() + 1);
        let header: Vec<Cell> = self
            .columns
            .iter()
            .map(|c| Cell::colored(c.header.clone(), Some(Color::Bold)))
            .collect();
        for row in std::iter::once(&header).chain(self.rows.iter()) {
            let mut line = String::new();
            let mut first = true;
            for (i, col) in self.columns.iter().enumerate() {
                if !layout.shown[i] {
                    continue;
                }
                let cell = row.get(i).cloned().unwrap_or_default();
                let text = truncate(cell.shown(layout.compact[i]), widths[i]);
                let pad = widths[i].saturating_sub(text_width(&text));
                if !first {
                    line.push_str(&" ".repeat(GAP));
                }
                first = false;
                let painted = style.paint(cell.color, &text);
                match col.align {
                    Align::Left if i == last => line.push_str(&painted),
                    Align::Left => {
                        line.push_str(&painted);
                        line.push_str(&" ".repeat(pad));
                    }
                    Align::Right => {
                        line.push_str(&" ".repeat(pad));
                        line.push_str(&painted);
                    }
                }
            }
            lines.push(line.trim_end().to_string());
        }
        lines
    }
}

/// Display width in characters (timer names and kinds are ASCII; other text is counted per
/// character, which is right for everything but wide CJK characters).
pub fn text_width(text: &str) -> usize {
    text.chars().count()
}

/// `text` cut to `width` characters, the last one an ellipsis when cut.
pub fn truncate(text: &str, width: usize) -> String {
    if text_width(text) <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(vec![
            Column::left("ID"),
            Column::left("SCHEDULE").shrink(2, 5),
            Column::right("RUNS"),
            Column::left("LAST STATUS").shrink(3, 6),
        ]);
        t.push(vec![
            "heartbeat".into(),
            "cron 0 8 * * * (Europe/Berlin)".into(),
            "12".into(),
            "FAILED: ConnectionError: upstream not ready".into(),
        ]);
        t
    }

    #[test]
    fn renders_whole_rows_without_a_limit() {
        let lines = sample().render(&Style::new(false), None);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("ID         SCHEDULE"), "{lines:?}");
        assert!(lines[1].ends_with("upstream not ready"), "{lines:?}");
    }

    #[test]
    fn shrinks_in_priority_order_to_fit() {
        let t = sample();
        let lines = t.render(&Style::new(false), Some(70));
        for line in &lines {
            assert!(text_width(line) <= 70, "{line:?}");
        }
        assert!(
            lines[1].contains("cron 0 8 * * * (Europe/Berlin)"),
            "{lines:?}"
        );
        assert!(lines[1].contains('…'), "{lines:?}");
        // Too narrow for everything: the name stays, other columns are left out or cut.
        let lines = t.render(&Style::new(false), Some(10));
        assert!(lines[1].starts_with("heartbeat"), "{lines:?}");
        assert!(lines.iter().all(|l| text_width(l) <= 10), "{lines:?}");
    }

    #[test]
    fn compact_forms_come_before_cutting() {
        let mut t = Table::new(vec![
            Column::left("ID"),
            Column::left("NEXT RUN").shrink(1, 6),
        ]);
        t.push(vec![
            "a".into(),
            Cell::new("14:05:00+01:00 (in 4m)").or_compact("in 4m"),
        ]);
        let lines = t.render(&Style::new(false), Some(20));
        assert_eq!(lines[1], "a   in 4m", "{lines:?}");
        let lines = t.render(&Style::new(false), None);
        assert_eq!(lines[1], "a   14:05:00+01:00 (in 4m)", "{lines:?}");
    }

    /// The `kron job list` columns, with a long timer name.
    fn job_list(name: &str) -> Table {
        let mut t = Table::new(crate::commands::list::columns());
        t.push(vec![
            name.into(),
            "scheduled".into(),
            "cron 0 3 * * * (Europe/Berlin)".into(),
            Cell::new("03:00:00+01:00 (in 2h55m)").or_compact("in 2h55m"),
            Cell::new("00:04:02+01:00 (23s ago)").or_compact("23s ago"),
            "FAILED: ConnectionError: orders API timed out after 10s".into(),
            "31".into(),
            "16".into(),
        ]);
        t
    }

    #[test]
    fn no_line_exceeds_the_limit() {
        let long = "nightly-report-for-the-eu-west-region-and-all-subsidiaries";
        for name in ["a", "heartbeat", long] {
            for limit in [1, 5, 10, 20, 30, 40, 60, 80, 100, 120] {
                let lines = job_list(name).render(&Style::new(false), Some(limit));
                for line in &lines {
                    assert!(text_width(line) <= limit, "{name} at {limit}: {line:?}");
                }
                // The timer is still recognisable by its first characters.
                if limit >= 40 {
                    let shown = lines[1].split(' ').next().unwrap_or("");
                    let keep = shown.trim_end_matches('…');
                    let recognisable = keep == name || (keep.len() >= 8 && name.starts_with(keep));
                    assert!(recognisable, "{lines:?}");
                }
            }
        }
    }

    #[test]
    fn columns_give_way_least_important_first() {
        let long = "nightly-report-for-the-eu-west-region-and-all-subsidiaries";
        let lines = job_list(long).render(&Style::new(false), Some(60));
        assert!(lines[0].starts_with("ID"), "{lines:?}");
        assert!(lines[0].contains("STATE"), "{lines:?}");
        assert!(lines[0].contains("NEXT RUN"), "{lines:?}");
        assert!(!lines[0].contains("LAST STATUS"), "{lines:?}");
        assert!(lines[1].starts_with("nightly-report-…"), "{lines:?}");
        // Wide enough: every column, every cell whole.
        let lines = job_list(long).render(&Style::new(false), Some(230));
        assert!(lines[1].starts_with(long), "{lines:?}");
        assert!(lines[1].contains("timed out after 10s"), "{lines:?}");
        assert!(lines[1].contains("03:00:00+01:00 (in 2h55m)"), "{lines:?}");
    }

    #[test]
    fn truncates_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(truncate("abc", 0), "");
    }
}
