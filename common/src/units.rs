//! Sizes on the command line: `64`, `4K`, `1M`, `1MiB` (binary multiples, as `dd` and
//! `truncate` read them), each demo with its own limits; and permission bits (`0600`).

/// Parses a size and checks it is within `min..=max` bytes; the error is clap's message.
pub fn size_in(text: &str, min: usize, max: usize) -> Result<usize, String> {
    let size = parse_size(text)?;
    if size < min || size > max {
        return Err(crate::tr!(
            "{size} bytes is outside this mechanism's range of {min} to {max}",
            size,
            min = bytes(min),
            max = bytes(max)
        ));
    }
    Ok(size)
}

/// Parses `64`, `4K`, `4k`, `4KiB`, `1M`, `1MiB`, `1G`, `1GiB` into bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits);
    let number: usize = number
        .parse()
        .map_err(|_| crate::tr!("`{text}` is not a size (examples: 64, 4K, 1MiB)", text))?;
    let shift = match suffix {
        "" | "B" => 0,
        "K" | "k" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => {
            return Err(crate::tr!(
                "unknown size suffix `{suffix}` (use K, M or G: powers of 1024)",
                suffix
            ));
        }
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| crate::tr!("`{text}` is too large", text))
}

/// Parses permission bits in octal, as chmod(1) reads them: `0600`, `640`. Only the
/// nine permission bits: set-user-ID, set-group-ID and sticky mean nothing for an IPC
/// object, and are refused.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    match u32::from_str_radix(text, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(crate::tr!(
            "`{text}` is not a mode (octal, 0000 to 0777, such as 0600)",
            text
        )),
    }
}

/// A byte count as a person reads it: `65536 bytes (64 KiB)`.
pub fn bytes(n: usize) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n >= 1 << shift && n % (1 << shift) == 0 {
            return crate::tr!("{n} bytes ({count} {unit})", n, count = n >> shift, unit);
        }
    }
    crate::tr!("{n} bytes", n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_and_without_suffixes() {
        assert_eq!(parse_size("64"), Ok(64));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
    }

    #[test]
    fn nonsense_is_refused_with_a_reason() {
        assert!(parse_size("").is_err());
        assert!(parse_size("-1").is_err());
        assert!(
            parse_size("12X")
                .unwrap_err()
                .contains("unknown size suffix")
        );
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn modes_are_octal_permission_bits() {
        assert_eq!(parse_mode("0600"), Ok(0o600));
        assert_eq!(parse_mode("666"), Ok(0o666));
        assert!(parse_mode("0888").is_err());
        assert!(parse_mode("1777").is_err());
        assert!(parse_mode("rw").is_err());
    }

    #[test]
    fn limits_are_checked_and_named() {
        assert_eq!(size_in("1K", 1, 4096), Ok(1024));
        let err = size_in("0", 1, 4096).unwrap_err();
        assert!(err.contains("1 bytes to 4096 bytes (4 KiB)"), "{err}");
        assert!(size_in("5K", 1, 4096).is_err());
    }
}
