//! Redis-style glob matching (`*`, `?`, `[abc]`, `[^a-z]`, `\` escapes), as SCAN MATCH and
//! KEYS use, for readers that filter keys themselves.

/// True when `s` matches `pattern`.
pub fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    // Iterative matcher with single-star backtracking: linear for the common patterns.
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, i));
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_match(pattern, p, s[i]) {
                        if matched {
                            p = next;
                            i += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if pattern[p + 1] == s[i] {
                        p += 2;
                        i += 1;
                        continue;
                    }
                }
                c => {
                    if c == s[i] {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, si)) => {
                p = sp;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[start] == b'['`; returns whether it
/// matched and the index after the class.
fn class_match(pattern: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut p = start + 1;
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut matched = false;
    while p < pattern.len() && pattern[p] != b']' {
        if pattern[p] == b'\\' && p + 1 < pattern.len() {
            matched |= pattern[p + 1] == c;
            p += 2;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' && pattern[p + 2] != b']' {
            let (a, b) = (
                pattern[p].min(pattern[p + 2]),
                pattern[p].max(pattern[p + 2]),
            );
            matched |= (a..=b).contains(&c);
            p += 3;
        } else {
            matched |= pattern[p] == c;
            p += 1;
        }
    }
    // An unterminated class matches like Redis: up to the end of the pattern.
    let next = if p < pattern.len() { p + 1 } else { p };
    Some((matched != negate, next))
}

/// The literal prefix of a pattern up to its first special character, for fast rejects.
pub fn literal_prefix(pattern: &[u8]) -> &[u8] {
    let end = pattern
        .iter()
        .position(|c| matches!(c, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    &pattern[..end]
}

/// A pattern prepared once to match many names (a scan's keys): `*` and `<literal>*`, the
/// patterns readers mostly get, skip the general matcher (same answers as [`glob_match`]).
#[derive(Debug, Clone, Copy)]
pub enum Matcher<'a> {
    All,
    Prefix(&'a [u8]),
    Glob(&'a [u8]),
}

impl<'a> Matcher<'a> {
    pub fn new(pattern: &'a [u8]) -> Self {
        let lit = literal_prefix(pattern);
        let rest = &pattern[lit.len()..];
        if rest.is_empty() || rest.iter().any(|&c| c != b'*') {
            Matcher::Glob(pattern)
        } else if lit.is_empty() {
            Matcher::All
        } else {
            Matcher::Prefix(lit)
        }
    }

    pub fn matches(&self, s: &[u8]) -> bool {
        match self {
            Matcher::All => true,
            Matcher::Prefix(p) => s.starts_with(p),
            Matcher::Glob(p) => glob_match(p, s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_glob_semantics() {
        let yes = [
            ("*", "anything"),
            ("*", ""),
            ("person:*", "person:1"),
            ("h?llo", "hello"),
            ("h*llo", "heeeello"),
            ("h[ae]llo", "hallo"),
            ("h[^e]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("a\\*b", "a*b"),
            ("*:*:x", "a:b:c:x"),
        ];
        for (p, s) in yes {
            assert!(glob_match(p.as_bytes(), s.as_bytes()), "{p} ~ {s}");
        }
        let no = [
            ("person:*", "foo"),
            ("h[^e]llo", "hello"),
            ("h?llo", "hllo"),
            ("a\\*b", "axb"),
            ("abc", "abcd"),
        ];
        for (p, s) in no {
            assert!(!glob_match(p.as_bytes(), s.as_bytes()), "{p} !~ {s}");
        }
    }

    #[test]
    fn matcher_answers_as_glob_match() {
        let patterns = [
            "*",
            "**",
            "person:*",
            "person:**",
            "person:",
            "p*",
            "",
            "a\\*",
            "a\\**",
            "a?*",
            "a[bc]*",
            "*x",
            "a*b*",
        ];
        let names = [
            "", "p", "person:", "person:1", "persons", "a*", "a*b", "ab", "ax", "abx",
        ];
        for p in patterns {
            let m = Matcher::new(p.as_bytes());
            for s in names {
                assert_eq!(
                    m.matches(s.as_bytes()),
                    glob_match(p.as_bytes(), s.as_bytes()),
                    "{p} ~ {s} ({m:?})"
                );
            }
        }
        assert!(matches!(Matcher::new(b"*"), Matcher::All));
        assert!(matches!(
            Matcher::new(b"person:*"),
            Matcher::Prefix(b"person:")
        ));
        assert!(matches!(Matcher::new(b"a\\*"), Matcher::Glob(_)));
    }

    #[test]
    fn prefix_stops_at_specials() {
        assert_eq!(literal_prefix(b"person:*"), b"person:");
        assert_eq!(literal_prefix(b"abc"), b"abc");
    }
}
