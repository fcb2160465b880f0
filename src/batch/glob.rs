//! Shell-style patterns that select files of a folder by name or by relative path, compiled
//! by `globset` (the glob engine of ripgrep), with demix's rules on top: a pattern without `/`
//! matches the file name, and a leading `!` excludes.

use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};

use super::BatchError;

/// A compiled `--glob` pattern.
///
/// `*` matches any run of characters except `/`, `?` one character except `/`, `[abc]`,
/// `[a-z]` and `[!a-z]` one character of (or not of) a set, `{wav,flac}` any one of the
/// alternatives (which may be empty or nest), and `\` takes the next character literally.
/// `**` as a whole folder name crosses folders: `**/` matches zero or more folders, `/**/` one
/// `/` or more folders, a trailing `/**` everything below; anywhere else `**` is a `*` (as in
/// ripgrep and `.gitignore`). A pattern without `/` is matched against the file name, one with
/// `/` against the whole path relative to the folder given on the command line. Matching is
/// case-sensitive. A pattern starting with `!` excludes what it matches.
///
/// ```
/// use demix::batch::Glob;
/// let live = Glob::new("live/**/*.{wav,flac}")?;
/// assert!(live.matches("live/2024/set 1.flac".as_ref()));
/// assert!(live.matches("live/a.wav".as_ref()));
/// assert!(!live.matches("studio/a.wav".as_ref()));
/// let name = Glob::new("take?.wav")?;
/// assert!(name.matches("any/folder/take3.wav".as_ref()));
/// # Ok::<(), demix::batch::BatchError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: String,
    negated: bool,
    whole_path: bool,
    matcher: GlobMatcher,
}

impl PartialEq for Glob {
    /// Two globs are equal when their patterns are.
    fn eq(&self, other: &Glob) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for Glob {}

impl Glob {
    /// Compiles `pattern`.
    ///
    /// # Errors
    /// [`BatchError::Glob`] for an empty pattern, an unclosed `[` or `{`, an unopened `}`, a
    /// trailing `\`, or a range such as `[z-a]`.
    pub fn new(pattern: &str) -> Result<Glob, BatchError> {
        let error = |reason: String| BatchError::Glob {
            pattern: pattern.to_string(),
            reason,
        };
        let (negated, body) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        if body.is_empty() {
            return Err(error("the pattern is empty".into()));
        }
        let matcher = GlobBuilder::new(body)
            .literal_separator(true)
            .backslash_escape(true)
            .empty_alternates(true)
            .build()
            .map_err(|e| error(e.kind().to_string()))?
            .compile_matcher();
        Ok(Glob {
            pattern: pattern.to_string(),
            negated,
            whole_path: body.contains('/'),
            matcher,
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the pattern starts with `!`, i.e. excludes what it matches.
    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// Whether `relative` (a path relative to a folder given on the command line) matches,
    /// ignoring a leading `!`.
    pub fn matches(&self, relative: &Path) -> bool {
        let text: String = if self.whole_path {
            relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        } else {
            relative
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        };
        self.matcher.is_match(text)
    }
}

/// Whether `relative` passes a list of globs: it matches at least one pattern without `!`
/// (when there is any) and none with `!`.
pub(crate) fn selected(globs: &[Glob], relative: &Path) -> bool {
    let mut has_positive = false;
    let mut positive = false;
    for glob in globs {
        if glob.negated {
            if glob.matches(relative) {
                return false;
            }
        } else {
            has_positive = true;
            positive = positive || glob.matches(relative);
        }
    }
    positive || !has_positive
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        Glob::new(pattern).unwrap().matches(Path::new(path))
    }

    #[test]
    fn name_patterns_match_the_file_name_in_any_folder() {
        assert!(m("*.wav", "a.wav"));
        assert!(m("*.wav", "x/y/a.wav"));
        assert!(!m("*.wav", "a.flac"));
        assert!(!m("*.wav", "a.WAV"));
        assert!(m("a?c.wav", "abc.wav"));
        assert!(!m("a?c.wav", "ac.wav"));
        assert!(m("[a-c]*.wav", "b1.wav"));
        assert!(!m("[!a-c]*.wav", "b1.wav"));
        assert!(m("[]x].wav", "].wav"));
        assert!(m("*.{wav,flac}", "song.flac"));
        assert!(m(r"\*.wav", "*.wav"));
        assert!(!m(r"\*.wav", "x.wav"));
    }

    #[test]
    fn path_patterns_match_the_whole_relative_path() {
        assert!(m("live/*.wav", "live/a.wav"));
        assert!(!m("live/*.wav", "live/2024/a.wav"));
        assert!(m("live/**/*.wav", "live/a.wav"));
        assert!(m("live/**/*.wav", "live/2024/05/a.wav"));
        assert!(m("**/b/*.wav", "b/a.wav"));
        assert!(m("**/b/*.wav", "x/b/a.wav"));
        assert!(!m("**/b/*.wav", "xb/a.wav"));
        assert!(m("live/**", "live/x/y.wav"));
        assert!(m("{live,studio}/*.wav", "studio/a.wav"));
    }

    #[test]
    fn negated_patterns_exclude() {
        let globs = [
            Glob::new("*.wav").unwrap(),
            Glob::new("!*.tmp.wav").unwrap(),
        ];
        assert!(selected(&globs, Path::new("a.wav")));
        assert!(!selected(&globs, Path::new("a.tmp.wav")));
        assert!(!selected(&globs, Path::new("a.flac")));
        let only_negative = [Glob::new("!drafts/**").unwrap()];
        assert!(selected(&only_negative, Path::new("a.flac")));
        assert!(!selected(&only_negative, Path::new("drafts/a.flac")));
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for bad in ["", "!", "[ab", "{a,b", "a}", "a\\", "[z-a]"] {
            assert!(Glob::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn many_stars_do_not_take_exponential_time() {
        let glob = Glob::new("*a*a*a*a*a*a*a*a*a*a*a*b").unwrap();
        assert!(!glob.matches(Path::new(&"a".repeat(200))));
    }

    #[test]
    fn double_star_inside_a_name_is_a_single_star() {
        assert!(m("a**b.wav", "axyb.wav"));
        assert!(!m("x/a**b.wav", "x/a/y/b.wav"));
        assert!(!m("x/**.wav", "x/y/z.wav"));
        assert!(m("x/**.wav", "x/z.wav"));
    }

    #[test]
    fn alternatives_may_be_empty_or_nested() {
        assert!(m("{,take-}a.wav", "a.wav"));
        assert!(m("{,take-}a.wav", "take-a.wav"));
        assert!(m("{a,{b,c}}.wav", "c.wav"));
        assert!(!m("{a,{b,c}}.wav", "d.wav"));
    }

    #[test]
    fn many_alternatives_do_not_explode() {
        // 2^40 alternatives if expanded one by one.
        let glob = Glob::new(&"{a,b}".repeat(40)).unwrap();
        assert!(glob.matches(Path::new(&"ab".repeat(20))));
        assert!(!glob.matches(Path::new(&"ab".repeat(19))));
    }
}
