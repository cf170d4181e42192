//! Disruption windows (`SCALE_IN_WINDOWS`): when removals may happen. Parsed once at cold start, then
//! evaluated with the run's time as an argument.
//!
//! Syntax: windows separated by `;`, each `<days> <HH:MM>-<HH:MM> UTC`, where `<days>` is a
//! comma-separated list of days (`Mon`) and ranges (`Mon-Fri`, `Fri-Mon` wraps) or `*` for every day.
//! A window whose end is not after its start runs past midnight into the next day
//! (`Mon-Fri 20:00-06:00 UTC` is Monday 20:00 to Tuesday 06:00, ..., Friday 20:00 to Saturday 06:00);
//! `00:00-24:00` is the whole day. Only UTC: a time zone database would have to ship with the function.
//! Empty: always open.

use chrono::{DateTime, Datelike, Duration, NaiveTime, Timelike, Utc};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Windows {
    windows: Vec<Window>,
    /// As configured, for the report.
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Window {
    /// Days the window opens on, Monday first.
    days: [bool; 7],
    /// Minutes after midnight.
    start: u32,
    end: u32,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY: u32 = 24 * 60;

impl Windows {
    /// Parses the variable's value; `Err` says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let windows = text
            .split(';')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(|w| Window::parse(w).map_err(|e| format!("{w:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Windows { windows, text: text.trim().to_owned() })
    }

    /// No window configured: removals are allowed at any time.
    pub fn always(&self) -> bool {
        self.windows.is_empty()
    }

    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.always() || self.windows.iter().any(|w| w.contains(now))
    }

    /// The next time a window opens after `now` (within a week), for the report.
    pub fn next_opening(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let midnight = now.date_naive().and_time(NaiveTime::MIN).and_utc();
        (0..8)
            .flat_map(|d| {
                let day = midnight + Duration::days(d);
                let weekday = day.weekday().num_days_from_monday() as usize;
                self.windows
                    .iter()
                    .filter(move |w| w.days[weekday])
                    .map(move |w| day + Duration::minutes(i64::from(w.start)))
            })
            .filter(|t| *t > now)
            .min()
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

impl Window {
    fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let (days, times) = match parts.as_slice() {
            [days, times, zone] if zone.eq_ignore_ascii_case("UTC") => (*days, *times),
            [_, _, zone] => return Err(format!("time zone {zone:?}: only UTC is supported")),
            [days, times] => (*days, *times),
            _ => return Err("expected <days> <HH:MM>-<HH:MM> UTC, e.g. Mon-Fri 20:00-06:00 UTC".into()),
        };
        let (start, end) = times.split_once('-').ok_or("expected a time range HH:MM-HH:MM")?;
        let (start, end) = (minutes(start)?, minutes(end)?);
        if start == DAY {
            return Err("a window cannot start at 24:00".into());
        }
        if start == end {
            return Err("a window needs a start and an end that differ (00:00-24:00 is the whole day)".into());
        }
        Ok(Window { days: days_of(days)?, start, end })
    }

    fn contains(&self, now: DateTime<Utc>) -> bool {
        let today = now.weekday().num_days_from_monday() as usize;
        let yesterday = (today + 6) % 7;
        let minute = now.hour() * 60 + now.minute();
        if self.start < self.end {
            self.days[today] && (self.start..self.end).contains(&minute)
        } else {
            (self.days[today] && minute >= self.start) || (self.days[yesterday] && minute < self.end)
        }
    }
}

fn minutes(text: &str) -> Result<u32, String> {
    let (h, m) = text.split_once(':').ok_or_else(|| format!("{text:?} is not HH:MM"))?;
    let parse = |s: &str| s.parse::<u32>().ok().filter(|_| s.len() == 2);
    match (parse(h), parse(m)) {
        (Some(24), Some(0)) => Ok(DAY),
        (Some(h), Some(m)) if h < 24 && m < 60 => Ok(h * 60 + m),
        _ => Err(format!("{text:?} is not a time from 00:00 to 24:00")),
    }
}

fn days_of(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    if text == "*" {
        return Ok([true; 7]);
    }
    for item in text.split(',') {
        let (from, to) = item.split_once('-').unwrap_or((item, item));
        let (from, to) = (day(from)?, day(to)?);
        let mut d = from;
        loop {
            days[d] = true;
            if d == to {
                break;
            }
            d = (d + 1) % 7;
        }
    }
    Ok(days)
}

fn day(text: &str) -> Result<usize, String> {
    let lower = text.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| lower == *d || lower == full_name(d))
        .ok_or_else(|| format!("{text:?} is not a day (Mon, Tue, ... Sun)"))
}

fn full_name(short: &str) -> &'static str {
    match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        _ => "sunday",
    }
}

#[cfg(test)]
mod tests;
