//! Where output goes and how it looks: the terminal's width, colour, tables, times.

pub mod style;
pub mod table;
pub mod timefmt;

use std::io::{self, IsTerminal, Write};

use crate::cli::ColorChoice;
use crate::error::CliResult;
use style::Style;

/// Standard output with the decisions made once per invocation: colour and width.
pub struct Out {
    writer: io::BufWriter<io::Stdout>,
    pub style: Style,
    /// The width tables must fit in (`None`: not a terminal, print rows whole).
    pub width: Option<usize>,
}

impl Out {
    pub fn new(color: ColorChoice) -> Out {
        let stdout = io::stdout();
        let tty = stdout.is_terminal();
        let colour = match color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => tty && !no_color_set(),
        };
        Out {
            writer: io::BufWriter::new(stdout),
            style: Style::new(colour),
            width: terminal_width(tty),
        }
    }

    /// Writes one line. A closed pipe becomes `CliError::BrokenPipe` (quiet exit), never a panic.
    pub fn line(&mut self, text: impl AsRef<str>) -> CliResult {
        self.writer.write_all(text.as_ref().as_bytes())?;
        self.writer.write_all(b"\n")?;
        Ok(())
    }

    /// Writes prose, wrapped at spaces to the output's width when it has one (a word longer
    /// than the width stays whole).
    pub fn wrapped(&mut self, text: &str) -> CliResult {
        let Some(width) = self.width else {
            return self.line(text);
        };
        let mut line = String::new();
        for word in text.split_whitespace() {
            let needed =
                line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
            if !line.is_empty() && needed > width {
                self.line(&line)?;
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        if line.is_empty() {
            Ok(())
        } else {
            self.line(&line)
        }
    }

    /// Writes a JSON document (from `data::to_value`) followed by a newline.
    pub fn json(&mut self, text: &str) -> CliResult {
        self.line(text)
    }

    pub fn flush(&mut self) -> CliResult {
        self.writer.flush()?;
        Ok(())
    }
}

/// `NO_COLOR` set to anything but the empty string turns colour off (no-color.org).
fn no_color_set() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// `COLUMNS` when set to a number (so scripts and tests can choose), else the terminal's width
/// when standard output is one.
fn terminal_width(tty: bool) -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return Some(columns);
    }
    if !tty {
        return None;
    }
    let size = rustix::termios::tcgetwinsize(io::stdout()).ok()?;
    (size.ws_col > 0).then_some(usize::from(size.ws_col))
}
