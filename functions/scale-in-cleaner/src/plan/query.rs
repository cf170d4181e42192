//! The ECS cluster query language, as far as `memberOf` placement constraints use it in practice
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-query-language.html>):
//! `subject operator [argument]` with the subjects `attribute:<name>`, `ec2InstanceId` and
//! `agentConnected`; the operators `==`/`equals`, `!=`/`not_equals`, `in`, `!in`/`not_in`, `exists`,
//! `!exists`/`not_exists`, `=~`/`matches` and `!~`/`not_matches` (a Java regular expression that must
//! match the whole value); joined by `and`/`&&`, `or`/`||`, `not`/`!` and parentheses.
//!
//! Anything else (`task:group`, `runningTasksCount`, `registeredAt`, `agentVersion`, ordering operators,
//! a pattern this regex engine does not take) is refused with the reason: the planner then keeps the
//! instance rather than guess where ECS would place the task.

use std::collections::BTreeMap;

/// A parsed expression.
#[derive(Debug, Clone)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Test(Subject, Test),
}

/// What an expression looks at on a container instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Attribute(String),
    Ec2InstanceId,
    AgentConnected,
}

#[derive(Debug, Clone)]
pub enum Test {
    Equals(String),
    In(Vec<String>),
    Exists,
    Matches(regex_lite::Regex),
    /// The negation of the test inside: `!=`, `!in`, `!exists`, `!~`.
    Negated(Box<Test>),
}

/// The facts of one container instance an expression is evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub ec2_instance_id: &'a str,
    pub agent_connected: bool,
    /// Attribute name to value; attributes such as `ecs.capability.*` have none.
    pub attributes: &'a BTreeMap<String, Option<String>>,
}

impl Expr {
    /// Whether the instance is known to match. ECS's documentation does not say how a comparison with an
    /// attribute the instance lacks evaluates (`attribute:stack != prod` on an instance without `stack`),
    /// so such a comparison is unknown, combined as in three-valued logic, and an unknown result is not a
    /// match: the planner never counts on an instance ECS might refuse.
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        self.eval(facts) == Some(true)
    }

    fn eval(&self, facts: &Facts<'_>) -> Option<bool> {
        match self {
            Expr::And(a, b) => match (a.eval(facts), b.eval(facts)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            Expr::Or(a, b) => match (a.eval(facts), b.eval(facts)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            Expr::Not(e) => e.eval(facts).map(|v| !v),
            Expr::Test(subject, test) => {
                let agent = facts.agent_connected.to_string();
                let value = match subject {
                    Subject::Attribute(name) => facts.attributes.get(name).map(|v| v.as_deref()),
                    Subject::Ec2InstanceId => Some(Some(facts.ec2_instance_id)),
                    Subject::AgentConnected => Some(Some(agent.as_str())),
                };
                test.holds(value)
            }
        }
    }
}

impl Test {
    /// `value`: `None` when the subject does not exist, `Some(None)` when it exists without a value.
    /// Only `exists` and `!exists` are known for a subject that does not exist.
    fn holds(&self, value: Option<Option<&str>>) -> Option<bool> {
        let text = value.flatten();
        match self {
            Test::Exists => Some(value.is_some()),
            Test::Negated(inner) => inner.holds(value).map(|v| !v),
            _ if value.is_none() => None,
            Test::Equals(v) => Some(text == Some(v.as_str())),
            Test::In(list) => Some(text.is_some_and(|t| list.iter().any(|v| v == t))),
            Test::Matches(re) => Some(text.is_some_and(|t| re.is_match(t))),
        }
    }
}

/// Parses an expression; `Err` says what is not supported or not understood.
pub fn parse(text: &str) -> Result<Expr, String> {
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, at: 0 };
    let expr = p.or()?;
    match p.peek() {
        None => Ok(expr),
        Some(t) => Err(format!("unexpected {t:?} after a complete expression")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    OpenList,
    CloseList,
    Comma,
    Word(String),
    /// The raw argument of `=~`/`!~`, taken as written up to the next blank.
    Pattern(String),
}

/// Operators written with symbols become words, so that the parser sees one vocabulary.
fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |s: &str| Token::Word(s.to_owned());
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let (token, width) = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => (Token::Open, 1),
            ')' => (Token::Close, 1),
            '[' => (Token::OpenList, 1),
            ']' => (Token::CloseList, 1),
            ',' => (Token::Comma, 1),
            '=' | '!' if next == Some('~') => {
                out.push(word(if c == '=' { "matches" } else { "not_matches" }));
                let (pattern, end) = pattern_at(&chars, i + 2);
                out.push(Token::Pattern(pattern));
                i = end;
                continue;
            }
            '=' if next == Some('=') => (word("equals"), 2),
            '!' if next == Some('=') => (word("not_equals"), 2),
            '&' if next == Some('&') => (word("and"), 2),
            '|' if next == Some('|') => (word("or"), 2),
            '>' | '<' => return Err("ordering operators (<, >) are not supported".into()),
            '!' => {
                // `!in` and `!exists` are operators; a `!` before anything else is `not`.
                let rest = bare_word(&chars, i + 1);
                match rest.as_str() {
                    "in" | "exists" => (word(&format!("!{rest}")), 1 + rest.len()),
                    _ => (word("!"), 1),
                }
            }
            '\'' | '"' => {
                let end = chars[i + 1..].iter().position(|&q| q == c).ok_or("unterminated quote")?;
                (Token::Word(chars[i + 1..i + 1 + end].iter().collect()), end + 2)
            }
            _ => {
                let w = bare_word(&chars, i);
                if w.is_empty() {
                    return Err(format!("unexpected character {c:?}"));
                }
                let n = w.chars().count();
                if w.eq_ignore_ascii_case("matches") || w.eq_ignore_ascii_case("not_matches") {
                    out.push(Token::Word(w.to_ascii_lowercase()));
                    let (pattern, end) = pattern_at(&chars, i + n);
                    out.push(Token::Pattern(pattern));
                    i = end;
                    continue;
                }
                (Token::Word(w), n)
            }
        };
        out.push(token);
        i += width;
    }
    Ok(out)
}

/// The word starting at `i`: up to a blank, a bracket, a comma, a quote or an operator.
fn bare_word(chars: &[char], i: usize) -> String {
    chars[i.min(chars.len())..]
        .iter()
        .take_while(|&&c| !c.is_whitespace() && !"()[],'\"=!&|<>".contains(c))
        .collect()
}

/// A pattern runs to the next blank; closing parentheses it did not open end the group around it.
fn pattern_at(chars: &[char], mut i: usize) -> (String, usize) {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    let start = i;
    let mut depth = 0i32;
    while i < chars.len() && !chars[i].is_whitespace() {
        match chars[i] {
            '(' => depth += 1,
            ')' if depth == 0 => break,
            ')' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    (chars[start..i].iter().collect(), i)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&self, words: &[&str]) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if words.iter().any(|k| w.eq_ignore_ascii_case(k)))
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword(&["or"]) {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.keyword(&["and"]) {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.keyword(&["not", "!"]) {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or()?;
            return match self.next() {
                Some(Token::Close) => Ok(inner),
                other => Err(format!("expected ')', found {other:?}")),
            };
        }
        self.test()
    }

    fn test(&mut self) -> Result<Expr, String> {
        let subject = match self.next() {
            Some(Token::Word(w)) => subject(&w)?,
            other => return Err(format!("expected a subject, found {other:?}")),
        };
        let op = match self.next() {
            Some(Token::Word(w)) => w.to_ascii_lowercase(),
            other => return Err(format!("expected an operator, found {other:?}")),
        };
        let (negated, op) = match op.as_str() {
            "not_equals" => (true, "equals"),
            "!in" | "not_in" => (true, "in"),
            "!exists" | "not_exists" => (true, "exists"),
            "not_matches" => (true, "matches"),
            o => (false, o),
        };
        let test = match op {
            "equals" => Test::Equals(self.value()?),
            "exists" => Test::Exists,
            "in" => Test::In(self.list()?),
            "matches" => match self.next() {
                Some(Token::Pattern(p)) if !p.is_empty() => Test::Matches(
                    regex_lite::Regex::new(&format!("^(?:{p})$"))
                        .map_err(|e| format!("pattern {p:?} is not supported: {e}"))?,
                ),
                _ => return Err("expected a pattern after =~".into()),
            },
            other => return Err(format!("operator {other:?} is not supported")),
        };
        let test = if negated { Test::Negated(Box::new(test)) } else { test };
        Ok(Expr::Test(subject, test))
    }

    fn value(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Word(w)) => Ok(w),
            other => Err(format!("expected a value, found {other:?}")),
        }
    }

    fn list(&mut self) -> Result<Vec<String>, String> {
        if self.next() != Some(Token::OpenList) {
            return Err("expected '[' after in".into());
        }
        let mut values = Vec::new();
        loop {
            values.push(self.value()?);
            match self.next() {
                Some(Token::Comma) => {}
                Some(Token::CloseList) => return Ok(values),
                other => return Err(format!("expected ',' or ']', found {other:?}")),
            }
        }
    }
}

fn subject(word: &str) -> Result<Subject, String> {
    if let Some(name) = word.strip_prefix("attribute:") {
        return if name.is_empty() {
            Err("empty attribute name".into())
        } else {
            Ok(Subject::Attribute(name.into()))
        };
    }
    match word {
        "ec2InstanceId" => Ok(Subject::Ec2InstanceId),
        "agentConnected" => Ok(Subject::AgentConnected),
        // Where tasks run changes as the plan moves them, and the others are not placement facts.
        other => Err(format!("subject {other:?} is not supported")),
    }
}

#[cfg(test)]
mod tests;
