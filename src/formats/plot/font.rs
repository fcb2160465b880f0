//! The embedded bitmap font: 5×7 glyphs (plus two rows of descenders) of printable ASCII,
//! drawn for demix and stored as text in `font5x7.txt`.

use std::sync::OnceLock;

/// Glyph width in pixels.
pub(super) const WIDTH: usize = 5;
/// Horizontal advance from one character to the next.
pub(super) const ADVANCE: usize = 6;
/// Rows above the baseline.
pub(super) const ASCENT: usize = 7;
/// Rows in all, descenders included.
pub(super) const HEIGHT: usize = 9;

/// One glyph: a bit mask per row, the leftmost pixel in bit `WIDTH - 1`.
pub(super) type Glyph = [u8; HEIGHT];

const SOURCE: &str = include_str!("font5x7.txt");

fn table() -> &'static [Glyph; 128] {
    static TABLE: OnceLock<[Glyph; 128]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = [[0u8; HEIGHT]; 128];
        let mut lines = SOURCE.lines().filter(|l| !l.starts_with("//")).peekable();
        while let Some(header) = lines.next() {
            let c = header
                .strip_prefix('=')
                .and_then(|s| s.chars().next())
                .expect("font5x7.txt: a glyph starts with '=' and its character");
            let mut glyph = [0u8; HEIGHT];
            let mut row = 0;
            while let Some(line) = lines.next_if(|l| !l.starts_with('=')) {
                assert_eq!(line.len(), WIDTH, "font5x7.txt: row of {c:?}");
                glyph[row] = line
                    .bytes()
                    .fold(0, |bits, b| (bits << 1) | u8::from(b == b'#'));
                row += 1;
            }
            assert!(row == ASCENT || row == HEIGHT, "font5x7.txt: {c:?}");
            table[c as usize] = glyph;
        }
        table
    })
}

/// Whether the font draws `c` (the space counts).
pub(super) fn has_glyph(c: char) -> bool {
    c == ' ' || (c.is_ascii() && table()[c as usize] != [0; HEIGHT])
}

/// The glyph of `c`, or of `?` for characters the font lacks.
pub(super) fn glyph(c: char) -> &'static Glyph {
    if has_glyph(c) {
        &table()[c as usize]
    } else {
        &table()['?' as usize]
    }
}
