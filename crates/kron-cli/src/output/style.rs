//! ANSI colour, applied only when enabled (a terminal without `NO_COLOR`, or `--color always`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Color {
    Red,
    Green,
    Yellow,
    Blue,
    Magenta,
    Cyan,
    Dim,
    Bold,
}

impl Color {
    fn code(self) -> &'static str {
        match self {
            Color::Red => "31",
            Color::Green => "32",
            Color::Yellow => "33",
            Color::Blue => "34",
            Color::Magenta => "35",
            Color::Cyan => "36",
            Color::Dim => "2",
            Color::Bold => "1",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Style {
    enabled: bool,
}

impl Style {
    pub fn new(enabled: bool) -> Style {
        Style { enabled }
    }

    /// `text` in `color` (unchanged when colour is off).
    pub fn paint(&self, color: Option<Color>, text: &str) -> String {
        match color {
            Some(c) if self.enabled && !text.is_empty() => {
                format!("\x1b[{}m{text}\x1b[0m", c.code())
            }
            _ => text.to_string(),
        }
    }

    /// The three results of `doctor`, padded to the same width.
    pub fn verdict(&self, status: &str) -> String {
        let color = match status {
            "OK" => Color::Green,
            "WARN" => Color::Yellow,
            _ => Color::Red,
        };
        self.paint(Some(color), &format!("{status:<4}"))
    }
}

/// The colour a timer state is shown in.
pub fn state_color(state: &str) -> Option<Color> {
    match state {
        "running" => Some(Color::Cyan),
        "retrying" => Some(Color::Yellow),
        "paused" => Some(Color::Magenta),
        "orphaned" => Some(Color::Yellow),
        "dead" => Some(Color::Red),
        "completed" => Some(Color::Dim),
        _ => None,
    }
}

/// The colour of a last-status text ("OK", "FAILED: ...", "DEAD: ...").
pub fn status_color(status: &str) -> Option<Color> {
    if status.starts_with("OK") {
        Some(Color::Green)
    } else if status.starts_with("DEAD") {
        Some(Color::Red)
    } else if status.starts_with("FAILED") || status.starts_with("SKIPPED") {
        Some(Color::Yellow)
    } else {
        None
    }
}

/// The colour of an event kind in history.
pub fn kind_color(kind: &str) -> Option<Color> {
    match kind {
        "RUN_SUCCEEDED" => Some(Color::Green),
        "RUN_FAILED"
        | "RUN_INTERRUPTED"
        | "RUN_NOT_STARTED"
        | "RUN_SKIPPED_OVERLAP"
        | "RUN_MISSED"
        | "RUN_LEASE_EXPIRED" => Some(Color::Yellow),
        "RUN_DEAD" => Some(Color::Red),
        "RUN_STARTED" | "RUN_CLAIMED" => Some(Color::Cyan),
        k if k.starts_with("TIMER_") => Some(Color::Blue),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paints_only_when_enabled() {
        assert_eq!(Style::new(false).paint(Some(Color::Red), "x"), "x");
        assert_eq!(
            Style::new(true).paint(Some(Color::Red), "x"),
            "\x1b[31mx\x1b[0m"
        );
        assert_eq!(Style::new(true).paint(None, "x"), "x");
        assert_eq!(Style::new(true).paint(Some(Color::Red), ""), "");
    }
}
