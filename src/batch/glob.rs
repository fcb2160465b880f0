//! Shell-style patterns that select files of a folder by name or by relative path.

use std::path::Path;

use super::BatchError;

/// A compiled `--glob` pattern.
///
/// `*` matches any run of characters except `/`, `**` any run including `/` (`**/` also
/// matches no folder at all), `?` one character except `/`, `[abc]`, `[a-z]` and `[!a-z]` one
/// character of (or not of) a set, `{wav,flac}` any one of the alternatives, and `\` takes the
/// next character literally. A pattern without `/` is matched against the file name, one with
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: String,
    negated: bool,
    whole_path: bool,
    /// The pattern with its braces expanded: it matches when any alternative does.
    alternatives: Vec<Vec<Token>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**`, which crosses folders; `**/` is stored as `DoubleStarSlash`.
    DoubleStar,
    /// `**/`: zero or more whole folders.
    DoubleStarSlash,
    /// `[...]`: ranges (inclusive) and whether the set is negated.
    Class(Vec<(char, char)>, bool),
}

/// At most this many alternatives after brace expansion, so `{a,b}{c,d}...` cannot explode.
const MAX_ALTERNATIVES: usize = 1024;

impl Glob {
    /// Compiles `pattern`.
    ///
    /// # Errors
    /// [`BatchError::Glob`] for an empty pattern, an unclosed `[` or `{`, a trailing `\`, or
    /// more than 1024 brace alternatives.
    pub fn new(pattern: &str) -> Result<Glob, BatchError> {
        let error = |reason: &str| BatchError::Glob {
            pattern: pattern.to_string(),
            reason: reason.to_string(),
        };
        let (negated, body) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        if body.is_empty() {
            return Err(error("the pattern is empty"));
        }
        let expanded = expand_braces(body).map_err(&error)?;
        let alternatives = expanded
            .iter()
            .map(|alt| tokenize(alt))
            .collect::<Result<Vec<_>, _>>()
            .map_err(&error)?;
        Ok(Glob {
            pattern: pattern.to_string(),
            negated,
            whole_path: body.contains('/'),
            alternatives,
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
        let text: Vec<char> = text.chars().collect();
        self.alternatives
            .iter()
            .any(|tokens| match_tokens(tokens, &text))
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

/// `a{b,c}d` → `abd`, `acd`, innermost and leftmost first; `\` escapes survive.
fn expand_braces(pattern: &str) -> Result<Vec<String>, &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    // Find the first top-level `{` and its matching `}`.
    let mut i = 0;
    let mut open = None;
    let mut depth = 0usize;
    let mut commas = Vec::new();
    let mut in_class = false;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '{' if !in_class => {
                if depth == 0 {
                    open = Some(i);
                    commas.clear();
                }
                depth += 1;
            }
            ',' if !in_class && depth == 1 => commas.push(i),
            '}' if !in_class && depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    let start = open.expect("an opening brace");
                    let prefix: String = chars[..start].iter().collect();
                    let suffix: String = chars[i + 1..].iter().collect();
                    let mut bounds = vec![start];
                    bounds.extend(&commas);
                    bounds.push(i);
                    let mut out = Vec::new();
                    for pair in bounds.windows(2) {
                        let middle: String = chars[pair[0] + 1..pair[1]].iter().collect();
                        for tail in expand_braces(&format!("{middle}{suffix}"))? {
                            out.push(format!("{prefix}{tail}"));
                            if out.len() > MAX_ALTERNATIVES {
                                return Err("more than 1024 alternatives");
                            }
                        }
                    }
                    return Ok(out);
                }
            }
            _ => {}
        }
        i += 1;
    }
    if depth > 0 {
        return Err("a '{' is not closed");
    }
    Ok(vec![pattern.to_string()])
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let c = *chars.get(i + 1).ok_or("it ends with a lone '\\'")?;
                tokens.push(Token::Literal(c));
                i += 2;
            }
            '?' => {
                tokens.push(Token::One);
                i += 1;
            }
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while chars.get(i) == Some(&'*') {
                    i += 1;
                }
                if chars.get(i) == Some(&'/') {
                    tokens.push(Token::DoubleStarSlash);
                    i += 1;
                } else {
                    tokens.push(Token::DoubleStar);
                }
            }
            '*' => {
                tokens.push(Token::Star);
                i += 1;
            }
            '[' => {
                let mut j = i + 1;
                let negated = matches!(chars.get(j), Some('!' | '^'));
                if negated {
                    j += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let c = *chars.get(j).ok_or("a '[' is not closed")?;
                    if c == ']' && !first {
                        break;
                    }
                    first = false;
                    let c = if c == '\\' {
                        j += 1;
                        *chars.get(j).ok_or("a '[' is not closed")?
                    } else {
                        c
                    };
                    if chars.get(j + 1) == Some(&'-') && chars.get(j + 2).is_some_and(|&e| e != ']')
                    {
                        ranges.push((c, chars[j + 2]));
                        j += 3;
                    } else {
                        ranges.push((c, c));
                        j += 1;
                    }
                }
                tokens.push(Token::Class(ranges, negated));
                i = j + 1;
            }
            c => {
                tokens.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    Ok(tokens)
}

/// Backtracking match, memoised on (token, position) so that no pattern is exponential.
fn match_tokens(tokens: &[Token], text: &[char]) -> bool {
    let mut failed = vec![false; (tokens.len() + 1) * (text.len() + 1)];
    matches_from(tokens, text, 0, 0, &mut failed)
}

fn matches_from(tokens: &[Token], text: &[char], t: usize, p: usize, failed: &mut [bool]) -> bool {
    let key = t * (text.len() + 1) + p;
    if failed[key] {
        return false;
    }
    let ok = match tokens.get(t) {
        None => p == text.len(),
        Some(Token::Literal(c)) => {
            text.get(p) == Some(c) && matches_from(tokens, text, t + 1, p + 1, failed)
        }
        Some(Token::One) => {
            text.get(p).is_some_and(|&c| c != '/')
                && matches_from(tokens, text, t + 1, p + 1, failed)
        }
        Some(Token::Class(ranges, negated)) => {
            text.get(p).is_some_and(|&c| {
                c != '/' && ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }) && matches_from(tokens, text, t + 1, p + 1, failed)
        }
        Some(Token::Star) => {
            let mut end = p;
            loop {
                if matches_from(tokens, text, t + 1, end, failed) {
                    break true;
                }
                if end == text.len() || text[end] == '/' {
                    break false;
                }
                end += 1;
            }
        }
        Some(Token::DoubleStar) => {
            (p..=text.len()).any(|end| matches_from(tokens, text, t + 1, end, failed))
        }
        Some(Token::DoubleStarSlash) => {
            // Zero folders, or any run that ends just after a `/`.
            matches_from(tokens, text, t + 1, p, failed)
                || (p..text.len())
                    .filter(|&i| text[i] == '/')
                    .any(|i| matches_from(tokens, text, t + 1, i + 1, failed))
        }
    };
    if !ok {
        failed[key] = true;
    }
    ok
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
        for bad in ["", "!", "[ab", "{a,b", "a\\"] {
            assert!(Glob::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn many_stars_do_not_take_exponential_time() {
        let glob = Glob::new("*a*a*a*a*a*a*a*a*a*a*a*b").unwrap();
        assert!(!glob.matches(Path::new(&"a".repeat(200))));
    }
}
