//! Path globs for fault rules: `*` (any characters, `/` included), `?` (one character),
//! `[abc]`, `[a-z]`, `[!abc]` (one character of a set, or not of it), `\x` (`x` itself).
//!
//! A pattern without `/` is matched against the last component of the path (`*.db` matches
//! `/data/x.db`); a pattern with `/` against the whole path, which starts with `/` (the root
//! of the mount, or of the file system for the C libraries).

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    text: String,
    tokens: Vec<Token>,
    whole_path: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Star,
    Set { negated: bool, items: Vec<(char, char)> },
}

impl Glob {
    /// Compiles `pattern`, or says what is wrong with it.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("path=: the glob is empty".into());
        }
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::Any),
                '\\' => match chars.next() {
                    Some(e) => tokens.push(Token::Char(e)),
                    None => return Err(format!("path={pattern}: ends with a lone backslash")),
                },
                '[' => {
                    let negated = chars.next_if(|&c| c == '!' || c == '^').is_some();
                    let mut items = Vec::new();
                    let mut first = true;
                    loop {
                        let Some(c) = chars.next() else {
                            return Err(format!("path={pattern}: a '[' is never closed"));
                        };
                        if c == ']' && !first {
                            break;
                        }
                        first = false;
                        let lo = c;
                        if chars.peek() == Some(&'-') {
                            chars.next();
                            match chars.next() {
                                Some(']') => {
                                    items.push((lo, lo));
                                    items.push(('-', '-'));
                                    break;
                                }
                                Some(hi) if hi >= lo => items.push((lo, hi)),
                                Some(hi) => {
                                    return Err(format!(
                                        "path={pattern}: the range {lo}-{hi} is backwards"
                                    ))
                                }
                                None => {
                                    return Err(format!("path={pattern}: a '[' is never closed"))
                                }
                            }
                        } else {
                            items.push((lo, lo));
                        }
                    }
                    tokens.push(Token::Set { negated, items });
                }
                c => tokens.push(Token::Char(c)),
            }
        }
        Ok(Glob { text: pattern.to_string(), tokens, whole_path: pattern.contains('/') })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `path` matches: the whole path if the pattern has a `/`, else its last
    /// component.
    pub fn matches(&self, path: &str) -> bool {
        let subject = if self.whole_path {
            path
        } else {
            path.trim_end_matches('/').rsplit('/').next().unwrap_or(path)
        };
        let chars: Vec<char> = subject.chars().collect();
        matches_at(&self.tokens, &chars)
    }
}

/// Backtracking match with the classic single-star resume point (linear for one star, and
/// good enough for the few stars a rule has).
fn matches_at(tokens: &[Token], s: &[char]) -> bool {
    let (mut t, mut i) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while i < s.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                resume = Some((t, i));
                t += 1;
                continue;
            }
            Some(tok) if one(tok, s[i]) => {
                t += 1;
                i += 1;
                continue;
            }
            _ => {}
        }
        match resume {
            Some((st, si)) => {
                t = st + 1;
                i = si + 1;
                resume = Some((st, si + 1));
            }
            None => return false,
        }
    }
    tokens[t..].iter().all(|tok| *tok == Token::Star)
}

fn one(tok: &Token, c: char) -> bool {
    match tok {
        Token::Char(x) => *x == c,
        Token::Any => true,
        Token::Set { negated, items } => {
            items.iter().any(|&(lo, hi)| (lo..=hi).contains(&c)) != *negated
        }
        Token::Star => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).unwrap().matches(s)
    }

    #[test]
    fn basename_and_whole_path() {
        assert!(m("*.bad", "/a.bad"));
        assert!(m("*.bad", "/dir/sub/x.bad"));
        assert!(!m("*.bad", "/a.bad.not"));
        assert!(!m("*.bad", "/a.good"));
        assert!(m("/dir/*", "/dir/sub/x"));
        assert!(!m("/dir/*", "/other/x"));
        assert!(m("data?.db", "/data1.db"));
        assert!(!m("data?.db", "/data12.db"));
        assert!(m("*", "/anything"));
        assert!(m("test.db-wal", "/x/test.db-wal"));
        assert!(m("*-wal", "/x/test.db-wal"));
        assert!(m("a*b*c", "/aXXbYYc"));
        assert!(!m("a*b*c", "/aXXbYY"));
    }

    #[test]
    fn sets_and_escapes() {
        assert!(m("file[0-9]", "/file7"));
        assert!(!m("file[0-9]", "/filex"));
        assert!(m("file[!0-9]", "/filex"));
        assert!(m("[ab-]", "/-"));
        assert!(m("\\*", "/*"));
        assert!(!m("\\*", "/x"));
    }

    #[test]
    fn bad_globs_say_why() {
        assert!(Glob::new("").unwrap_err().contains("empty"));
        assert!(Glob::new("[abc").unwrap_err().contains("never closed"));
        assert!(Glob::new("x\\").unwrap_err().contains("backslash"));
        assert!(Glob::new("[z-a]").unwrap_err().contains("backwards"));
    }
}
