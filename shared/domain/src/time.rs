//! Time as stored and shown: RFC 3339 UTC with milliseconds, so timestamps sort as strings; and
//! the ISO week, the unit of every weekly figure.

use crate::Timestamp;

/// An ISO 8601 week, `2026-W47`: Monday to Sunday in the shop's time zone. Stored and shown as
/// that text (`Display`, [`IsoWeek::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    year: i16,
    week: i8,
}

impl IsoWeek {
    /// `2026-W47`; `None` for anything else, or a week the year does not have.
    pub fn parse(text: &str) -> Option<IsoWeek> {
        let (year, week) = text.trim().split_once("-W")?;
        if week.len() != 2 {
            return None;
        }
        let (year, week): (i16, i8) = (year.parse().ok()?, week.parse().ok()?);
        jiff::civil::ISOWeekDate::new(year, week, jiff::civil::Weekday::Monday).ok()?;
        Some(IsoWeek { year, week })
    }

    pub fn of_date(date: jiff::civil::Date) -> IsoWeek {
        let w = date.iso_week_date();
        IsoWeek { year: w.year(), week: w.week() }
    }

    /// The week `at` falls in, in time zone `tz`.
    pub fn of(at: Timestamp, tz: &jiff::tz::TimeZone) -> IsoWeek {
        IsoWeek::of_date(tz.to_datetime(at).date())
    }

    /// The last whole week before the one `now` falls in, in time zone `tz`.
    pub fn just_ended(now: Timestamp, tz: &jiff::tz::TimeZone) -> IsoWeek {
        IsoWeek::of(now, tz).before(1)
    }

    /// Its Monday and Sunday.
    pub fn dates(self) -> (jiff::civil::Date, jiff::civil::Date) {
        let monday = jiff::civil::ISOWeekDate::new(self.year, self.week, jiff::civil::Weekday::Monday)
            .expect("checked when made")
            .date();
        (monday, monday.checked_add(jiff::Span::new().days(6)).unwrap_or(monday))
    }

    /// `n` weeks earlier (later for a negative `n`).
    pub fn before(self, n: i64) -> IsoWeek {
        let (monday, _) = self.dates();
        monday.checked_sub(jiff::Span::new().days(7 * n)).map_or(self, IsoWeek::of_date)
    }
}

impl std::fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-W{:02}", self.year, self.week)
    }
}

/// `2026-11-23T01:00:00.000Z`.
pub fn iso_millis(at: Timestamp) -> String {
    at.round(jiff::Unit::Millisecond).unwrap_or(at).strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::IsoWeek;

    fn week(text: &str) -> IsoWeek {
        IsoWeek::parse(text).unwrap()
    }

    #[test]
    fn weeks_read_count_and_cross_years() {
        assert_eq!(week("2026-W48").to_string(), "2026-W48");
        assert_eq!(IsoWeek::parse("2026-W54"), None);
        assert_eq!(IsoWeek::parse("2026-48"), None);
        assert_eq!(IsoWeek::parse("2026-W4"), None);
        assert_eq!(week("2026-W01").before(1).to_string(), "2025-W52");
        assert_eq!(week("2026-W53").before(-1).to_string(), "2027-W01");
        assert_eq!(week("2026-W47").dates().0.to_string(), "2026-11-16");
        assert_eq!(week("2026-W47").dates().1.to_string(), "2026-11-22");
    }

    #[test]
    fn weeks_are_the_shops_weeks() {
        let shanghai = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        // Sunday 17:00 UTC is already Monday in Shanghai: the next ISO week.
        let at: crate::Timestamp = "2026-11-29T17:00:00Z".parse().unwrap();
        assert_eq!(IsoWeek::of(at, &jiff::tz::TimeZone::UTC).to_string(), "2026-W48");
        assert_eq!(IsoWeek::of(at, &shanghai).to_string(), "2026-W49");
        let new_year = "2027-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(IsoWeek::of(new_year, &jiff::tz::TimeZone::UTC).to_string(), "2026-W53");
        // Monday 09:00 in Shanghai reports on the week that just ended.
        assert_eq!(IsoWeek::just_ended("2026-11-23T01:00:00Z".parse().unwrap(), &shanghai).to_string(), "2026-W47");
        assert_eq!(IsoWeek::just_ended("2026-11-22T23:30:00Z".parse().unwrap(), &shanghai).to_string(), "2026-W47");
    }
    #[test]
    fn timestamps_sort_as_text() {
        let a = super::iso_millis("2026-11-23T01:00:00Z".parse().unwrap());
        let b = super::iso_millis("2026-11-23T01:00:00.0504Z".parse().unwrap());
        assert_eq!((a.as_str(), b.as_str()), ("2026-11-23T01:00:00.000Z", "2026-11-23T01:00:00.050Z"));
        assert!(a < b);
    }
}
