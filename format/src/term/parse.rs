//! The reader of term files: what `file:consult/1` accepts (SPEC.md §2), with errors that
//! name the file, line and column.

use super::Term;

/// A syntax error in a term file.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("{file}:{line}:{column}: expected {expected}, found {found}")]
pub struct TermError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub expected: String,
    pub found: String,
}

/// Parses every term of a term file (as `file:consult/1` does).
pub fn parse_terms(file: &str, text: &str) -> Result<Vec<Term>, TermError> {
    let mut p = Parser {
        file,
        src: text.as_bytes(),
        text,
        pos: 0,
        line: 1,
        col: 1,
    };
    let mut out = Vec::new();
    loop {
        p.skip_ws();
        if p.pos >= p.src.len() {
            return Ok(out);
        }
        out.push(p.term(0)?);
        p.skip_ws();
        p.expect_end_dot()?;
    }
}

/// Parses a file that must hold exactly one term.
pub fn parse_term(file: &str, text: &str) -> Result<Term, TermError> {
    let mut terms = parse_terms(file, text)?;
    match terms.len() {
        1 => Ok(terms.remove(0)),
        n => Err(TermError {
            file: file.to_owned(),
            line: 1,
            column: 1,
            expected: "exactly one term".into(),
            found: format!("{n} terms"),
        }),
    }
}

/// Nesting deeper than this is refused, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 256;

struct Parser<'a> {
    file: &'a str,
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    line: usize,
    col: usize,
}

impl Parser<'_> {
    fn err<T>(&self, expected: &str) -> Result<T, TermError> {
        let found = match self.text[self.pos..].chars().next() {
            None => "end of file".to_owned(),
            Some(c) => format!("{c:?}"),
        };
        Err(TermError {
            file: self.file.to_owned(),
            line: self.line,
            column: self.col,
            expected: expected.to_owned(),
            found,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        self.src.get(self.pos + n).copied()
    }

    fn bump_char(&mut self) -> Option<char> {
        let c = self.text[self.pos..].chars().next()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            if b == b'%' {
                while let Some(b) = self.peek() {
                    if b == b'\n' {
                        break;
                    }
                    self.bump_char();
                }
            } else if b.is_ascii_whitespace() {
                self.bump_char();
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.src[self.pos..].starts_with(s.as_bytes()) {
            for _ in s.chars() {
                self.bump_char();
            }
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &str) -> Result<(), TermError> {
        self.skip_ws();
        if self.eat(s) {
            Ok(())
        } else {
            self.err(&format!("`{s}`"))
        }
    }

    fn expect_end_dot(&mut self) -> Result<(), TermError> {
        if self.peek() == Some(b'.') && self.peek_at(1).is_none_or(|b| b.is_ascii_whitespace() || b == b'%') {
            self.bump_char();
            Ok(())
        } else {
            self.err("`.` ending the term")
        }
    }

    fn term(&mut self, depth: usize) -> Result<Term, TermError> {
        if depth > MAX_DEPTH {
            return self.err(&format!("at most {MAX_DEPTH} levels of nesting"));
        }
        self.skip_ws();
        let Some(b) = self.peek() else {
            return self.err("a term");
        };
        match b {
            b'{' => {
                self.bump_char();
                Ok(Term::Tuple(self.seq(b'}', depth)?))
            }
            b'[' => self.list(depth),
            b'#' if self.peek_at(1) == Some(b'{') => self.map(depth),
            b'<' if self.peek_at(1) == Some(b'<') => self.binary(),
            b'"' => {
                let mut s = self.quoted(b'"')?;
                loop {
                    self.skip_ws();
                    if self.peek() == Some(b'"') {
                        s.push_str(&self.quoted(b'"')?);
                    } else {
                        return Ok(Term::String(s));
                    }
                }
            }
            b'\'' => Ok(Term::Atom(self.quoted(b'\'')?)),
            b'$' => {
                self.bump_char();
                Ok(Term::Integer(i128::from(u32::from(self.char_literal()?))))
            }
            b'-' | b'+' => {
                let neg = b == b'-';
                self.bump_char();
                self.skip_ws();
                match self.number()? {
                    Term::Integer(i) => Ok(Term::Integer(if neg { -i } else { i })),
                    Term::Float(f) => Ok(Term::Float(if neg { -f } else { f })),
                    _ => unreachable!("number() returns numbers"),
                }
            }
            b'0'..=b'9' => self.number(),
            b'a'..=b'z' => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'@')
                {
                    self.bump_char();
                }
                Ok(Term::Atom(self.text[start..self.pos].to_owned()))
            }
            b'A'..=b'Z' | b'_' => self.err("a term (variables are not allowed in term files)"),
            _ => self.err("a term"),
        }
    }

    /// Comma-separated terms up to `close`; the opener is already consumed.
    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Term>, TermError> {
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(close) {
            self.bump_char();
            return Ok(items);
        }
        loop {
            items.push(self.term(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.bump_char();
                }
                Some(c) if c == close => {
                    self.bump_char();
                    return Ok(items);
                }
                _ => return self.err(&format!("`,` or `{}`", close as char)),
            }
        }
    }

    fn list(&mut self, depth: usize) -> Result<Term, TermError> {
        self.bump_char();
        let mut items = Vec::new();
        self.skip_ws();
        if self.eat("]") {
            return Ok(Term::List(items));
        }
        loop {
            items.push(self.term(depth + 1)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.bump_char();
                }
                Some(b']') => {
                    self.bump_char();
                    return Ok(Term::List(items));
                }
                Some(b'|') if self.peek_at(1) != Some(b'|') => {
                    self.bump_char();
                    let tail = self.term(depth + 1)?;
                    self.expect("]")?;
                    return Ok(match tail {
                        Term::List(rest) => {
                            items.extend(rest);
                            Term::List(items)
                        }
                        Term::String(s) if s.is_empty() => Term::List(items),
                        other => Term::ImproperList(items, Box::new(other)),
                    });
                }
                _ => return self.err("`,`, `|` or `]`"),
            }
        }
    }

    fn map(&mut self, depth: usize) -> Result<Term, TermError> {
        self.bump_char();
        self.bump_char();
        let mut pairs = Vec::new();
        self.skip_ws();
        if self.eat("}") {
            return Ok(Term::Map(pairs));
        }
        loop {
            let k = self.term(depth + 1)?;
            self.expect("=>")?;
            let v = self.term(depth + 1)?;
            pairs.push((k, v));
            self.skip_ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("}") {
                return Ok(Term::Map(pairs));
            }
            return self.err("`,` or `}`");
        }
    }

    fn binary(&mut self) -> Result<Term, TermError> {
        self.bump_char();
        self.bump_char();
        let mut bytes = Vec::new();
        self.skip_ws();
        if self.eat(">>") {
            return Ok(Term::Binary(bytes));
        }
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'"') => {
                    let s = self.quoted(b'"')?;
                    if self.eat("/utf8") {
                        bytes.extend_from_slice(s.as_bytes());
                    } else {
                        for c in s.chars() {
                            match u8::try_from(u32::from(c)) {
                                Ok(b) => bytes.push(b),
                                Err(_) => return self.err("latin-1 characters (or a `/utf8` segment)"),
                            }
                        }
                    }
                }
                Some(b'0'..=b'9' | b'$') => {
                    let v = match self.term(1)? {
                        Term::Integer(i) => i,
                        _ => return self.err("a byte"),
                    };
                    match u8::try_from(v) {
                        Ok(b) => bytes.push(b),
                        Err(_) => return self.err("a byte value 0..255"),
                    }
                }
                _ => return self.err("a string or a byte in a binary"),
            }
            self.skip_ws();
            if self.eat(",") {
                continue;
            }
            if self.eat(">>") {
                return Ok(Term::Binary(bytes));
            }
            return self.err("`,` or `>>`");
        }
    }

    fn digits(&mut self, radix: u32) -> String {
        let mut s = String::new();
        while let Some(b) = self.peek() {
            if (b as char).is_digit(radix) {
                s.push(b as char);
                self.bump_char();
            } else if b == b'_' && self.peek_at(1).is_some_and(|n| (n as char).is_digit(radix)) && !s.is_empty() {
                self.bump_char();
            } else {
                break;
            }
        }
        s
    }

    fn number(&mut self) -> Result<Term, TermError> {
        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return self.err("a number");
        }
        let int = self.digits(10);
        if self.peek() == Some(b'#') {
            let radix: u32 = match int.parse() {
                Ok(r @ 2..=36) => r,
                _ => return self.err("a base from 2 to 36 before `#`"),
            };
            self.bump_char();
            let ds = self.digits(radix);
            if ds.is_empty() {
                return self.err(&format!("base-{radix} digits"));
            }
            return match i128::from_str_radix(&ds, radix) {
                Ok(i) => Ok(Term::Integer(i)),
                Err(_) => self.err("an integer that fits in 128 bits"),
            };
        }
        if self.peek() == Some(b'.') && self.peek_at(1).is_some_and(|b| b.is_ascii_digit()) {
            self.bump_char();
            let frac = self.digits(10);
            let mut text = format!("{int}.{frac}");
            if matches!(self.peek(), Some(b'e' | b'E')) {
                let sign_len = usize::from(matches!(self.peek_at(1), Some(b'-' | b'+')));
                if self.peek_at(1 + sign_len).is_some_and(|b| b.is_ascii_digit()) {
                    self.bump_char();
                    text.push('e');
                    if sign_len == 1 {
                        text.push(self.bump_char().unwrap_or('+'));
                    }
                    text.push_str(&self.digits(10));
                }
            }
            return match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Term::Float(f)),
                _ => self.err("a finite float"),
            };
        }
        match int.parse::<i128>() {
            Ok(i) => Ok(Term::Integer(i)),
            Err(_) => self.err("an integer that fits in 128 bits"),
        }
    }

    /// A `"..."` or `'...'` literal; the opening quote is at `pos`.
    fn quoted(&mut self, quote: u8) -> Result<String, TermError> {
        self.bump_char();
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return self.err(&format!("closing `{}`", quote as char)),
                Some(b) if b == quote => {
                    self.bump_char();
                    return Ok(s);
                }
                Some(b'\\') => {
                    self.bump_char();
                    s.push(self.escape()?);
                }
                Some(_) => s.push(self.bump_char().unwrap_or_default()),
            }
        }
    }

    /// After `$`: a character or an escape.
    fn char_literal(&mut self) -> Result<char, TermError> {
        match self.peek() {
            None => self.err("a character after `$`"),
            Some(b'\\') => {
                self.bump_char();
                self.escape()
            }
            Some(_) => Ok(self.bump_char().unwrap_or_default()),
        }
    }

    /// After a backslash.
    fn escape(&mut self) -> Result<char, TermError> {
        let Some(c) = self.peek() else {
            return self.err("an escape sequence");
        };
        let simple = match c {
            b'b' => Some('\u{8}'),
            b'd' => Some('\u{7f}'),
            b'e' => Some('\u{1b}'),
            b'f' => Some('\u{c}'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b's' => Some(' '),
            b't' => Some('\t'),
            b'v' => Some('\u{b}'),
            _ => None,
        };
        if let Some(ch) = simple {
            self.bump_char();
            return Ok(ch);
        }
        match c {
            b'0'..=b'7' => {
                let mut v = 0u32;
                for _ in 0..3 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            self.bump_char();
                        }
                        _ => break,
                    }
                }
                char::from_u32(v).map_or_else(|| self.err("a valid character code"), Ok)
            }
            b'x' => {
                self.bump_char();
                let ds = if self.eat("{") {
                    let ds = self.digits(16);
                    self.expect("}")?;
                    ds
                } else {
                    let mut ds = String::new();
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d) if d.is_ascii_hexdigit() => {
                                ds.push(d as char);
                                self.bump_char();
                            }
                            _ => break,
                        }
                    }
                    ds
                };
                u32::from_str_radix(&ds, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .map_or_else(|| self.err("hex digits of a valid character code"), Ok)
            }
            b'^' => {
                self.bump_char();
                match self.peek() {
                    Some(l) if l.is_ascii_alphabetic() => {
                        self.bump_char();
                        Ok(char::from(l.to_ascii_lowercase() - b'a' + 1))
                    }
                    _ => self.err("a letter after `\\^`"),
                }
            }
            _ => Ok(self.bump_char().unwrap_or_default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::write_terms;

    fn one(s: &str) -> Term {
        parse_term("t.config", s).unwrap()
    }

    #[test]
    fn parses_a_rel_file() {
        let text = r#"%% comment
{release,{"shop","0.1.0+20240101-10-aaaaaaa"},
         {erts,"13.1.5"},
         [{kernel,"8.5.3"},
          {stdlib,"4.2"},
          {sasl,"4.2", permanent},
          {'my-app', "1.0", [incl]}]}.
"#;
        let t = one(text);
        let items = t.as_tuple().unwrap();
        assert_eq!(items[0], Term::atom("release"));
        assert_eq!(
            items[1],
            Term::Tuple(vec![Term::string("shop"), Term::string("0.1.0+20240101-10-aaaaaaa")])
        );
        assert_eq!(
            items[3].as_list().unwrap()[3].as_tuple().unwrap()[0],
            Term::atom("my-app")
        );
    }

    #[test]
    fn parses_every_literal_kind() {
        let terms = parse_terms(
            "x",
            r#"16#fF. 2#1010. -12. 1_000. 3.5e-2. $a. $\n. "a" "b". <<"hi",0,255>>. <<"é"/utf8>>.
               [a|b]. [a|[b]]. #{k => [1]}. 'quoted atom\'s'. "\x{1F600}\101\^a". [].
               {}. <<>>. 1.0E3."#,
        )
        .unwrap();
        assert_eq!(
            terms,
            vec![
                Term::Integer(255),
                Term::Integer(10),
                Term::Integer(-12),
                Term::Integer(1000),
                Term::Float(0.035),
                Term::Integer(97),
                Term::Integer(10),
                Term::string("ab"),
                Term::Binary(vec![b'h', b'i', 0, 255]),
                Term::Binary("é".as_bytes().to_vec()),
                Term::ImproperList(vec![Term::atom("a")], Box::new(Term::atom("b"))),
                Term::List(vec![Term::atom("a"), Term::atom("b")]),
                Term::Map(vec![(Term::atom("k"), Term::List(vec![Term::Integer(1)]))]),
                Term::atom("quoted atom's"),
                Term::string("\u{1F600}A\u{1}"),
                Term::List(vec![]),
                Term::Tuple(vec![]),
                Term::Binary(vec![]),
                Term::Float(1000.0),
            ]
        );
    }

    #[test]
    fn errors_name_file_line_and_expectation() {
        let err = parse_terms("rel/shop.rel", "{release,\n  {\"shop\", \"1\"}\n  [x]}.").unwrap_err();
        assert_eq!(err.to_string(), "rel/shop.rel:3:3: expected `,` or `}`, found '['");
        let err = parse_terms("sys.config", "[{app, Var}].").unwrap_err();
        assert_eq!(
            err.to_string(),
            "sys.config:1:8: expected a term (variables are not allowed in term files), found 'V'"
        );
        let err = parse_terms("a.app", "{application, a}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "a.app:1:17: expected `.` ending the term, found end of file"
        );
        let err = parse_terms("b", "\"open").unwrap_err();
        assert_eq!(err.to_string(), "b:1:6: expected closing `\"`, found end of file");
        let err = parse_terms("c", "<<256>>.").unwrap_err();
        assert_eq!(err.expected, "a byte value 0..255");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = format!("{}{}.", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse_terms("deep", &text).unwrap_err();
        assert!(err.expected.contains("levels of nesting"), "{err}");
    }

    #[test]
    fn printer_output_parses_back() {
        let text = r#"{release,{"shop","0.1.0"},{erts,"13.1.5"},[{kernel,"8.5.3"},{'Elixir.Foo',"1"},{'end',"2"}]}.
[{a,<<"x\"y">>},{b,<<1,2,200>>},{c,"tab\there"},{d,1.0e-7},{e,#{x => [1|2]}},{f,<<"é"/utf8>>}]."#;
        let terms = parse_terms("t", text).unwrap();
        let printed = write_terms(&terms);
        assert_eq!(parse_terms("printed", &printed).unwrap(), terms);
        assert!(
            printed.contains("'Elixir.Foo'") && printed.contains("'end'"),
            "{printed}"
        );
    }

    #[test]
    fn strings_equal_char_lists_the_erlang_way() {
        assert!(Term::string("ab").erl_eq(&Term::List(vec![Term::Integer(97), Term::Integer(98)])));
        assert!(Term::string("").erl_eq(&Term::List(vec![])));
        assert!(!Term::string("ab").erl_eq(&Term::atom("ab")));
    }
}
