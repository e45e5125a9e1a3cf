//! Field-by-field checks of a cron expression, so that an error names the field and the value
//! ("hour 25 is out of range 0-23") instead of the parser's generic "Number out of bounds".
//!
//! These checks never accept anything croner rejects nor reject anything it accepts: they only
//! find the mistake first and word it. Forms they do not recognise are left to croner, whose
//! error is then attributed to the first field croner rejects on its own.

/// One field of an expression: its name and the values it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Field {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        }
    }

    fn range(self) -> (u32, u32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            // 0 and 7 are both Sunday.
            Field::DayOfWeek => (0, 7),
        }
    }

    /// The fields of a 5-field (`seconds == false`) or 6-field expression, in order.
    pub(crate) fn layout(seconds: bool) -> &'static [Field] {
        const SIX: [Field; 6] = [
            Field::Second,
            Field::Minute,
            Field::Hour,
            Field::DayOfMonth,
            Field::Month,
            Field::DayOfWeek,
        ];
        if seconds {
            &SIX
        } else {
            &SIX[1..]
        }
    }

    /// The number a value token stands for; `Ok(None)` when the form is not one this module
    /// knows (left to croner).
    fn value(self, token: &str) -> Result<Option<u32>, String> {
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            let (min, max) = self.range();
            return match token.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(format!(
                    "{} {token} is out of range {min}-{max}",
                    self.name()
                )),
            };
        }
        let names: &[&str] = match self {
            Field::Month => &MONTHS,
            Field::DayOfWeek => &WEEKDAYS,
            _ => return Ok(None),
        };
        let offset = u32::from(self == Field::Month);
        Ok(names
            .iter()
            .zip(0u32..)
            .find(|(name, _)| name.eq_ignore_ascii_case(token))
            .map(|(_, i)| i + offset))
    }

    /// Checks one field's text; `Err` is the reason, naming the field and the bad value.
    pub(crate) fn check(self, text: &str) -> Result<(), String> {
        for item in text.split(',') {
            self.check_item(item)?;
        }
        Ok(())
    }

    fn check_item(self, item: &str) -> Result<(), String> {
        let name = self.name();
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            if step.bytes().all(|b| b.is_ascii_digit()) && step.bytes().any(|b| b != b'0') {
                // A valid step; what it applies to is checked below.
            } else if !step.is_empty() && step.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{name} step {item:?}: the step must be at least 1"));
            }
            if base.is_empty() || !(base == "*" || base.contains('-')) {
                return Err(format!(
                    "{name} {item:?}: a step applies to * or a range; write */{step} or a-b/{step}"
                ));
            }
        }
        let mut base = base;
        if base == "*" || base == "?" {
            return Ok(());
        }
        if self == Field::DayOfMonth {
            if base.eq_ignore_ascii_case("L") || base.eq_ignore_ascii_case("LW") {
                return Ok(());
            }
            if let Some(day) = base.strip_suffix(['W', 'w']) {
                return self.value(day).map(|_| ());
            }
        }
        if self == Field::DayOfWeek {
            if let Some((day, nth)) = base.split_once('#') {
                if !matches!(nth, "1" | "2" | "3" | "4" | "5") {
                    return Err(format!(
                        "{name} {item:?}: the occurrence after # must be 1 to 5"
                    ));
                }
                base = day;
            } else if base.len() > 1 {
                base = base.strip_suffix(['L', 'l']).unwrap_or(base);
            }
        }
        match base.split_once('-') {
            Some((start, end)) => {
                let (Some(a), Some(b)) = (self.value(start)?, self.value(end)?) else {
                    return Ok(());
                };
                if a > b {
                    return Err(format!(
                        "{name} range {start}-{end} goes backwards; write {end}-{start}"
                    ));
                }
                Ok(())
            }
            None => self.value(base).map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field_and_the_value() {
        let cases: &[(Field, &str, &str)] = &[
            (Field::Hour, "25", "hour 25 is out of range 0-23"),
            (Field::Minute, "60", "minute 60 is out of range 0-59"),
            (Field::Second, "61", "second 61 is out of range 0-59"),
            (
                Field::DayOfMonth,
                "0",
                "day-of-month 0 is out of range 1-31",
            ),
            (
                Field::DayOfMonth,
                "32W",
                "day-of-month 32 is out of range 1-31",
            ),
            (Field::Month, "13", "month 13 is out of range 1-12"),
            (Field::DayOfWeek, "8", "day-of-week 8 is out of range 0-7"),
            (Field::DayOfWeek, "9L", "day-of-week 9 is out of range 0-7"),
            (
                Field::DayOfWeek,
                "FRI#6",
                "the occurrence after # must be 1 to 5",
            ),
            (Field::Hour, "1-99", "hour 99 is out of range 0-23"),
            (Field::Minute, "5-1", "minute range 5-1 goes backwards"),
            (Field::Minute, "*/0", "at least 1"),
            (Field::Minute, "5/10", "a step applies to * or a range"),
            (Field::Minute, "/10", "a step applies to * or a range"),
            (Field::Hour, "0,30", "hour 30 is out of range 0-23"),
            (
                Field::Minute,
                "99999999999",
                "minute 99999999999 is out of range",
            ),
        ];
        for (field, text, want) in cases {
            let got = field.check(text).expect_err(text);
            assert!(got.contains(want), "{text}: {got}");
        }
    }

    #[test]
    fn accepts_what_croner_accepts() {
        let cases: &[(Field, &str)] = &[
            (Field::Minute, "*"),
            (Field::Minute, "*/15"),
            (Field::Minute, "5-59/5"),
            (Field::Hour, "9-17"),
            (Field::Hour, "0,12"),
            (Field::DayOfMonth, "L"),
            (Field::DayOfMonth, "lw"),
            (Field::DayOfMonth, "15W"),
            (Field::DayOfMonth, "?"),
            (Field::Month, "JAN-JUN"),
            (Field::Month, "jul"),
            (Field::DayOfWeek, "MON-FRI"),
            (Field::DayOfWeek, "5L"),
            (Field::DayOfWeek, "FRI#2"),
            (Field::DayOfWeek, "7"),
        ];
        for (field, text) in cases {
            assert_eq!(field.check(text), Ok(()), "{text}");
        }
    }
}
