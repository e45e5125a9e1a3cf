//! Plain-text tables sized to the terminal. When a table is too wide, its shrinkable columns give
//! way one after the other (highest priority first): a column whose cells have a compact form
//! switches to it ("in 4m" instead of "14:05:00+01:00 (in 4m)"), then it is cut (with `…`) down
//! to its minimum. Identifying columns never shrink.

use super::style::{Color, Style};

const GAP: usize = 2;

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

/// How each column is shown: its width, and whether its cells use their compact form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub widths: Vec<usize>,
    pub compact: Vec<bool>,
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
        layout
    }

    /// The table as lines (header first), fitted to `limit`.
    pub fn render(&self, style: &Style, limit: Option<usize>) -> Vec<String> {
        let layout = self.layout(limit);
        let widths = &layout.widths;
        let last = self.columns.len().saturating_sub(1);
        let mut lines = Vec::with_capacity(self.rows.len() + 1);
        let header: Vec<Cell> = self
            .columns
            .iter()
            .map(|c| Cell::colored(c.header.clone(), Some(Color::Bold)))
            .collect();
        for row in std::iter::once(&header).chain(self.rows.iter()) {
            let mut line = String::new();
            for (i, col) in self.columns.iter().enumerate() {
                let cell = row.get(i).cloned().unwrap_or_default();
                let text = truncate(cell.shown(layout.compact[i]), widths[i]);
                let pad = widths[i].saturating_sub(text_width(&text));
                if i > 0 {
                    line.push_str(&" ".repeat(GAP));
                }
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
        // Too narrow for everything: the unshrinkable columns stay whole.
        let lines = t.render(&Style::new(false), Some(10));
        assert!(lines[1].starts_with("heartbeat"), "{lines:?}");
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

    #[test]
    fn truncates_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(truncate("abc", 0), "");
    }
}
