use chrono::TimeZone;

use super::*;

/// 2026-11-23 is a Monday.
fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0).single().unwrap_or_default()
}

#[test]
fn a_window_past_midnight_runs_into_the_next_day() {
    let w = Windows::parse("Mon-Fri 20:00-06:00 UTC").unwrap_or_default();
    assert!(!w.contains(at(23, 19, 59)), "Monday before the window");
    assert!(w.contains(at(23, 20, 0)), "Monday 20:00");
    assert!(w.contains(at(24, 5, 59)), "Tuesday morning, from Monday's window");
    assert!(!w.contains(at(24, 6, 0)), "Tuesday 06:00: closed");
    assert!(!w.contains(at(23, 3, 0)), "Monday 03:00: Sunday has no window");
    assert!(w.contains(at(29 - 1, 3, 0)), "Saturday 03:00, from Friday's window");
    assert!(!w.contains(at(29, 21, 0)), "Sunday evening");
}

#[test]
fn several_windows_days_and_whole_days() {
    let w = Windows::parse("Sat,Sun 00:00-24:00 UTC; Wed 12:00-13:00").unwrap_or_default();
    assert!(w.contains(at(28, 0, 0)) && w.contains(at(29, 23, 59)));
    assert!(w.contains(at(25, 12, 30)) && !w.contains(at(25, 13, 0)));
    assert!(!w.contains(at(23, 12, 30)));
    let every = Windows::parse("* 01:00-02:00 UTC").unwrap_or_default();
    assert!((23..30).all(|d| every.contains(at(d, 1, 30))));
    let wrap = Windows::parse("Fri-Mon 10:00-11:00 UTC").unwrap_or_default();
    assert!(wrap.contains(at(23, 10, 0)) && wrap.contains(at(27, 10, 0)) && !wrap.contains(at(25, 10, 0)));
    let full = Windows::parse("monday 10:00-11:00 UTC").unwrap_or_default();
    assert!(full.contains(at(23, 10, 0)));
}

#[test]
fn no_window_is_always_open() {
    let w = Windows::parse("  ").unwrap_or_default();
    assert!(w.always() && w.contains(at(23, 3, 0)));
}

#[test]
fn the_next_opening_is_reported() {
    let w = Windows::parse("Mon-Fri 20:00-06:00 UTC").unwrap_or_default();
    assert_eq!(w.next_opening(at(23, 12, 0)), Some(at(23, 20, 0)));
    assert_eq!(w.next_opening(at(28, 12, 0)), Some(at(30, 20, 0)), "Saturday: next is Monday");
}

#[test]
fn bad_windows_say_what_is_wrong() {
    for (text, why) in [
        ("Mon-Fri 20:00-06:00 CET", "only UTC"),
        ("Mon-Fri", "expected <days>"),
        ("Mon-Fri 2000-0600 UTC", "is not HH:MM"),
        ("Mon-Fri 25:00-06:00 UTC", "is not a time"),
        ("Mon-Fri 6:00-08:00 UTC", "is not a time"),
        ("Mon-Fri 08:00-08:00 UTC", "differ"),
        ("Mon-Fri 24:00-08:00 UTC", "cannot start at 24:00"),
        ("Mon-Fry 20:00-06:00 UTC", "\"Fry\" is not a day"),
        ("Mon 20:00 UTC", "time range"),
        ("Mon 20:00-21:00 UTC; Tue", "\"Tue\""),
    ] {
        let err = Windows::parse(text).err().unwrap_or_else(|| panic!("{text} accepted"));
        assert!(err.contains(why), "{text}: {err}");
    }
}
