//! Splits the `--pre-stop` string into words the way a shell would (quotes and backslashes
//! honoured), without ever handing it to a shell.

/// Splits `text` into words. Single quotes keep everything literally; double quotes keep
/// everything but `\"` and `\\`; a backslash outside quotes escapes the next character.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    let unterminated = |what: &str| format!("unterminated {what} in '{text}'");
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err(unterminated("single quote")),
                    }
                }
            }
            '"' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => current.push(c),
                            Some(c) => {
                                current.push('\\');
                                current.push(c);
                            }
                            None => return Err(unterminated("double quote")),
                        },
                        Some(c) => current.push(c),
                        None => return Err(unterminated("double quote")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(format!("trailing backslash in '{text}'")),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    if words.is_empty() {
        return Err(format!("'{text}' names no command"));
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<String> {
        split_words(text).unwrap()
    }

    #[test]
    fn plain_words_split_on_whitespace() {
        assert_eq!(
            split("  curl -s  http://x/drain\t"),
            ["curl", "-s", "http://x/drain"]
        );
    }

    #[test]
    fn quotes_group_words_and_are_removed() {
        assert_eq!(
            split(r#"sh -c 'echo "a  b" > /tmp/x'"#),
            ["sh", "-c", r#"echo "a  b" > /tmp/x"#]
        );
        assert_eq!(
            split(r#"echo "it's" 'say "hi"'"#),
            ["echo", "it's", r#"say "hi""#]
        );
        assert_eq!(split(r#"a"b"'c'd"#), ["abcd"]);
        assert_eq!(split("''"), [""]);
    }

    #[test]
    fn backslashes_escape_outside_and_inside_double_quotes() {
        assert_eq!(split(r"a\ b c"), ["a b", "c"]);
        assert_eq!(split(r#""a\"b\\c\d""#), [r#"a"b\c\d"#]);
        assert_eq!(split(r"'a\b'"), [r"a\b"]);
    }

    #[test]
    fn unterminated_quotes_and_empty_commands_are_rejected() {
        assert!(split_words("sh -c 'x")
            .unwrap_err()
            .contains("single quote"));
        assert!(split_words("sh -c \"x")
            .unwrap_err()
            .contains("double quote"));
        assert!(split_words("x \\").unwrap_err().contains("backslash"));
        assert!(split_words("   ").unwrap_err().contains("no command"));
        assert!(split_words("").is_err());
    }
}
