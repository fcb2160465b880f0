//! File formats that are not audio: NumPy `.npy`/`.npz` (templates, factors), standard MIDI
//! files (notes) and PNG charts.

pub mod midi;
pub mod npy;
pub mod plot;

/// Text read from a file, fit for a one-line error message: control characters (a newline,
/// say) written as escapes, and cut after `max_chars` characters with `...`, since the text
/// may be anything the file holds, up to megabytes of binary.
pub(crate) fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for c in text.chars().take(max_chars) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if text.chars().nth(max_chars).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt("hann", 40), "hann");
        assert_eq!(excerpt("a\nb\u{0}c", 40), "a\\nb\\u{0}c");
        assert_eq!(excerpt("ééééé", 3), "ééé...");
        assert_eq!(excerpt(&"x".repeat(1 << 20), 40).len(), 43);
    }
}
