//! The one emitted form of instants and local times, written digit by digit into a buffer
//! (an availability reply writes hundreds of them; `core::fmt` was most of its cost).

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The one emitted form of an instant, `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds
/// truncated; GMS: §1.2).
pub fn format_utc(ts: Timestamp) -> String {
    let mut s = String::with_capacity(24);
    write_utc(&mut s, ts);
    s
}

/// A local time without a zone, `YYYY-MM-DDTHH:MM:SS.mmm` (capacity periods, V2 `localTime`).
pub fn format_local(dt: DateTime) -> String {
    let mut s = String::with_capacity(23);
    write_local(&mut s, dt);
    s
}

/// Appends [`format_utc`]'s form of `ts` to `out` (replies that list many instants write them
/// into one buffer).
pub fn write_utc(out: &mut String, ts: Timestamp) {
    write_local(out, TimeZone::UTC.to_datetime(ts));
    out.push('Z');
}

/// Appends [`format_local`]'s form of `dt` to `out`: digits written directly, not through
/// `core::fmt` (an availability reply writes hundreds of them).
pub fn write_local(out: &mut String, dt: DateTime) {
    let mut b = format_fields(dt);
    let from = match u16::try_from(dt.year()) {
        Ok(year @ 0..=9999) => {
            b[..4].copy_from_slice(&digits4(year));
            0
        }
        // Years outside 0000..=9999 never reach the wire (see WIRE_MIN); written as before.
        _ => {
            out.push_str(&format!("{:04}", dt.year()));
            4
        }
    };
    // Every byte is an ASCII digit or separator.
    out.push_str(std::str::from_utf8(&b[from..]).unwrap_or_default());
}

/// `????-MM-DDTHH:MM:SS.mmm` for `dt`: every field but the year, as ASCII bytes.
fn format_fields(dt: DateTime) -> [u8; 23] {
    // jiff keeps each field in range (month 1..=12, ..., millisecond 0..=999).
    let two = |v: i8| digits2(v as u8);
    let (mo, d, h, mi, s) = (
        two(dt.month()),
        two(dt.day()),
        two(dt.hour()),
        two(dt.minute()),
        two(dt.second()),
    );
    let ms = digits4(dt.millisecond() as u16);
    [
        b'?', b'?', b'?', b'?', b'-', mo[0], mo[1], b'-', d[0], d[1], b'T', h[0], h[1], b':',
        mi[0], mi[1], b':', s[0], s[1], b'.', ms[1], ms[2], ms[3],
    ]
}

/// `v` (0..=99) as two ASCII digits.
fn digits2(v: u8) -> [u8; 2] {
    [b'0' + v / 10 % 10, b'0' + v % 10]
}

/// `v` (0..=9999) as four ASCII digits.
fn digits4(v: u16) -> [u8; 4] {
    let (hi, lo) = ((v / 100 % 100) as u8, (v % 100) as u8);
    let (hi, lo) = (digits2(hi), digits2(lo));
    [hi[0], hi[1], lo[0], lo[1]]
}
