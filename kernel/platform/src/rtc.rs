//! The wall clock: the CMOS real-time clock, and calendar arithmetic.

/// A calendar date and time of day (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalendarTime {
    /// Full year, e.g. 2026.
    pub year: u32,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 to 59.
    pub second: u32,
}

impl CalendarTime {
    /// Seconds since 1970-01-01 00:00 UTC, or `None` for an impossible date.
    pub fn to_unix_seconds(&self) -> Option<u64> {
        if !(1970..10_000).contains(&self.year)
            || !(1..=12).contains(&self.month)
            || !(1..=31).contains(&self.day)
            || self.hour > 23
            || self.minute > 59
            || self.second > 60
        {
            return None;
        }
        // Days from civil (proleptic Gregorian), counting years from March.
        let year = i64::from(self.year) - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month = i64::from(self.month);
        let day_of_year =
            (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        let days = era * 146_097 + day_of_era - 719_468;
        let seconds = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        u64::try_from(seconds).ok()
    }
}

/// Decodes a CMOS register value that may be binary-coded decimal.
pub fn decode_cmos(value: u8, is_bcd: bool) -> u32 {
    if is_bcd { u32::from(value >> 4) * 10 + u32::from(value & 0x0f) } else { u32::from(value) }
}

#[cfg(target_os = "none")]
pub use hardware::read_cmos_clock;

#[cfg(target_os = "none")]
mod hardware {
    use x86_64::instructions::port::Port;

    use super::{CalendarTime, decode_cmos};

    const INDEX: u16 = 0x70;
    const DATA: u16 = 0x71;
    const UPDATE_IN_PROGRESS: u8 = 0x80;
    const STATUS_B_BINARY: u8 = 0x04;
    const STATUS_B_24_HOUR: u8 = 0x02;
    /// Index bit that keeps NMIs disabled while the index is set.
    const NMI_DISABLE: u8 = 0x80;

    fn read(register: u8) -> u8 {
        // SAFETY: ports 0x70/0x71 select and read a CMOS register, which has
        // no side effect besides the selection.
        unsafe {
            Port::<u8>::new(INDEX).write(NMI_DISABLE | register);
            Port::<u8>::new(DATA).read()
        }
    }

    /// Reads the CMOS clock (MC146818), or `None` where there is none.
    pub fn read_cmos_clock() -> Option<CalendarTime> {
        let mut waited = 0;
        while read(0x0a) & UPDATE_IN_PROGRESS != 0 {
            waited += 1;
            if waited > 1_000_000 {
                return None;
            }
        }
        let status_b = read(0x0b);
        if status_b == 0xff {
            return None;
        }
        let is_bcd = status_b & STATUS_B_BINARY == 0;
        let raw_hour = read(0x04);
        let mut hour = decode_cmos(raw_hour & 0x7f, is_bcd);
        if status_b & STATUS_B_24_HOUR == 0 && raw_hour & 0x80 != 0 {
            hour = (hour % 12) + 12;
        } else if status_b & STATUS_B_24_HOUR == 0 && hour == 12 {
            hour = 0;
        }
        let century = match decode_cmos(read(0x32), is_bcd) {
            century @ 19..=99 => century,
            _ => 20,
        };
        let time = CalendarTime {
            year: century * 100 + decode_cmos(read(0x09), is_bcd),
            month: decode_cmos(read(0x08), is_bcd),
            day: decode_cmos(read(0x07), is_bcd),
            hour,
            minute: decode_cmos(read(0x02), is_bcd),
            second: decode_cmos(read(0x00), is_bcd),
        };
        time.to_unix_seconds().map(|_| time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<u64> {
        CalendarTime { year, month, day, hour, minute, second }.to_unix_seconds()
    }

    #[test]
    fn converts_known_dates() {
        assert_eq!(at(1970, 1, 1, 0, 0, 0), Some(0));
        assert_eq!(at(2000, 3, 1, 0, 0, 0), Some(951_868_800));
        assert_eq!(at(2024, 2, 29, 12, 34, 56), Some(1_709_210_096));
        assert_eq!(at(2026, 11, 27, 0, 0, 0), Some(1_795_737_600));
    }

    #[test]
    fn refuses_impossible_dates() {
        assert_eq!(at(1969, 12, 31, 23, 59, 59), None);
        assert_eq!(at(2026, 13, 1, 0, 0, 0), None);
        assert_eq!(at(2026, 1, 1, 24, 0, 0), None);
    }

    #[test]
    fn decodes_bcd() {
        assert_eq!(decode_cmos(0x59, true), 59);
        assert_eq!(decode_cmos(59, false), 59);
    }
}
