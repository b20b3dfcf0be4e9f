//! Durations as the command line takes them: a whole number and a unit (`90s`, `30m`, `2h`,
//! `7d`), for `--wait-for-owners`, `--since` and `--quiet-for`.

use std::time::Duration;

/// A whole number and one of s, m, h, d.
pub fn parse(text: &str) -> Result<Duration, String> {
    let not_a_duration =
        || format!("{text:?} is not a duration: give a number and s, m, h or d (90s, 30m, 2h, 7d)");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(not_a_duration()),
    };
    let number: u64 = number.parse().map_err(|_| not_a_duration())?;
    Ok(Duration::from_secs(number.saturating_mul(seconds_per)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_take_a_number_and_a_unit() {
        assert_eq!(super::parse("90s"), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(
            super::parse("7d"),
            Ok(std::time::Duration::from_secs(604_800))
        );
        for bad in ["", "7", "d", "1.5h", "-1h", "1w"] {
            assert!(super::parse(bad).is_err(), "{bad}");
        }
    }
}
