//! The statement text as sqlparser tokenizes it, with byte offsets. sqlparser reports source
//! locations as 1-based line and column counted in characters; splicing needs byte offsets into
//! the original text. [`Source`] tokenizes once (the parser then reuses the tokens), keeps the
//! significant tokens (no whitespace, no comments) with their byte ranges and parenthesis depth,
//! and answers the position questions the rewrite passes ask: where does this identifier start,
//! where does this parenthesis close, which commas split this list.

use std::ops::Range;

use sqlparser::ast::Ident;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, TokenizerError};

/// A significant token with its byte range and nesting depth.
#[derive(Debug, Clone)]
pub(crate) struct Tok {
    /// The token.
    pub token: Token,
    /// Byte offset of its first byte.
    pub start: usize,
    /// Byte offset just past its last byte.
    pub end: usize,
    /// Parentheses and brackets open around it; an opening or closing one has the depth of
    /// its surroundings.
    pub depth: u32,
    loc: Location,
}

/// The statement text and its significant tokens.
pub(crate) struct Source<'a> {
    /// The original text.
    pub sql: &'a str,
    toks: Vec<Tok>,
}

/// Walks the text forward, turning (line, column) locations into byte offsets the way
/// sqlparser's tokenizer counts them: every `\n` starts a line, every other char is a column.
struct Cursor<'a> {
    sql: &'a str,
    byte: usize,
    at: Location,
}

impl Cursor<'_> {
    fn advance_to(&mut self, loc: Location) -> usize {
        while self.at < loc {
            let Some(c) = self.sql[self.byte..].chars().next() else { break };
            self.byte += c.len_utf8();
            if c == '\n' {
                self.at = Location { line: self.at.line + 1, column: 1 };
            } else {
                self.at.column += 1;
            }
        }
        self.byte
    }
}

impl<'a> Source<'a> {
    /// Tokenizes `sql`; also returns the tokens with locations for the parser.
    pub fn tokenize(sql: &'a str) -> Result<(Self, Vec<TokenWithSpan>), TokenizerError> {
        let spanned = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location()?;
        let mut cursor = Cursor { sql, byte: 0, at: Location { line: 1, column: 1 } };
        let mut toks = Vec::with_capacity(spanned.len());
        let mut depth = 0u32;
        for t in &spanned {
            if matches!(t.token, Token::Whitespace(_) | Token::EOF) {
                continue;
            }
            let start = cursor.advance_to(t.span.start);
            let end = cursor.advance_to(t.span.end);
            let d = match t.token {
                Token::LParen | Token::LBracket => {
                    depth += 1;
                    depth - 1
                }
                Token::RParen | Token::RBracket => {
                    depth = depth.saturating_sub(1);
                    depth
                }
                _ => depth,
            };
            toks.push(Tok { token: t.token.clone(), start, end, depth: d, loc: t.span.start });
        }
        Ok((Self { sql, toks }, spanned))
    }

    /// Number of significant tokens.
    pub fn len(&self) -> usize {
        self.toks.len()
    }

    /// The `i`-th significant token.
    pub fn tok(&self, i: usize) -> Option<&Tok> {
        self.toks.get(i)
    }

    /// Index of the token that starts at `loc`.
    pub fn at(&self, loc: Location) -> Option<usize> {
        self.toks.binary_search_by(|t| t.loc.cmp(&loc)).ok()
    }

    /// Index of the token an identifier was parsed from.
    pub fn ident(&self, ident: &Ident) -> Option<usize> {
        self.at(ident.span.start)
    }

    /// Byte offset where an identifier starts.
    pub fn ident_start(&self, ident: &Ident) -> Option<usize> {
        self.ident(ident).map(|i| self.toks[i].start)
    }

    /// Whether token `i` is the unquoted keyword `kw` (any case).
    pub fn is_kw(&self, i: usize, kw: &str) -> bool {
        matches!(self.toks.get(i), Some(Tok { token: Token::Word(w), .. })
            if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw))
    }

    /// Index of the parenthesis or bracket closing the one at `open`.
    pub fn close_of(&self, open: usize) -> Option<usize> {
        let depth = self.toks.get(open)?.depth;
        (open + 1..self.toks.len())
            .find(|&j| self.toks[j].depth == depth && matches!(self.toks[j].token, Token::RParen | Token::RBracket))
    }

    /// Splits tokens `from..to` at the commas at the depth of token `from`.
    pub fn split_commas(&self, from: usize, to: usize) -> Vec<(usize, usize)> {
        let Some(depth) = self.toks.get(from).map(|t| t.depth) else { return Vec::new() };
        let mut out = Vec::new();
        let mut start = from;
        for j in from..to.min(self.toks.len()) {
            if self.toks[j].depth == depth && self.toks[j].token == Token::Comma {
                out.push((start, j));
                start = j + 1;
            }
        }
        out.push((start, to));
        out
    }

    /// The tokens `from..to` in a comparable form: unquoted words folded to lower case,
    /// everything else as written, without whitespace and comments.
    pub fn norm(&self, from: usize, to: usize) -> Vec<String> {
        self.toks[from.min(self.toks.len())..to.min(self.toks.len())]
            .iter()
            .map(|t| match &t.token {
                Token::Word(w) if w.quote_style.is_none() => w.value.to_lowercase(),
                other => other.to_string(),
            })
            .collect()
    }

    /// Whether a bind parameter (`$n`) occurs among the tokens inside byte range `r`.
    pub fn has_param(&self, r: &Range<usize>) -> bool {
        self.toks.iter().any(|t| t.start >= r.start && t.end <= r.end && matches!(t.token, Token::Placeholder(_)))
    }

    /// Byte offset where token `i` starts (the text's end past the last token).
    pub fn pos(&self, i: usize) -> usize {
        self.toks.get(i).map_or(self.sql.len(), |t| t.start)
    }

    /// Byte offset just past token `i` (the text's end past the last token).
    pub fn end_of(&self, i: usize) -> usize {
        self.toks.get(i).map_or(self.sql.len(), |t| t.end)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn byte_offsets_follow_multibyte_text_and_lines() {
        let sql = "SELECT 'é€' AS \"Ü\",\n  x -- ç\nFROM t";
        let (src, _) = Source::tokenize(sql).unwrap();
        let texts: Vec<&str> = (0..src.len()).map(|i| &sql[src.pos(i)..src.end_of(i)]).collect();
        assert_eq!(texts, ["SELECT", "'é€'", "AS", "\"Ü\"", ",", "x", "FROM", "t"]);
    }

    #[test]
    fn commas_split_at_the_first_depth_only() {
        let sql = "a, f(b, c), d";
        let (src, _) = Source::tokenize(sql).unwrap();
        let parts: Vec<&str> =
            src.split_commas(0, src.len()).into_iter().map(|(a, b)| &sql[src.pos(a)..src.end_of(b - 1)]).collect();
        assert_eq!(parts, ["a", "f(b, c)", "d"]);
        assert_eq!(src.close_of(3), Some(7));
    }
}
