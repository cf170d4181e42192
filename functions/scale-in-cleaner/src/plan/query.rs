//! The ECS cluster query language, as `memberOf` placement constraints use it
//! (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-query-language.html>):
//! `subject operator [argument]` with every documented subject: `attribute:<name>`, `ec2InstanceId`,
//! `agentConnected`, `agentVersion`, `registeredAt`, `runningTasksCount` and `task:group`; the operators
//! `==`/`equals`, `!=`/`not_equals`, `in`, `!in`/`not_in`, `exists`, `!exists`/`not_exists`,
//! `=~`/`matches` and `!~`/`not_matches` (a Java regular expression that must match the whole value), and
//! for `agentVersion`, `registeredAt` and `runningTasksCount` the ordering operators `>`/`greater_than`,
//! `>=`/`greater_than_equal`, `<`/`less_than`, `<=`/`less_than_equal`; joined by `and`/`&&`, `or`/`||`,
//! `not`/`!` and parentheses. An argument may be quoted (`ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']`),
//! and a quoted pattern is what the quotes hold (`=~ 'c5.*'`).
//!
//! What is refused, with the reason (the planner then keeps the instance rather than guess where ECS
//! would place the task): an operator the page does not document for a subject, a pattern over
//! `task:group` (which groups an instance runs is known only for the groups asked about), a pattern this
//! regex engine does not take, a version or a date that does not read as the page shows them.

use chrono::{DateTime, Utc};

mod eval;
mod value;

pub use eval::Facts;
use value::ordered;
pub use value::version;

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
    AgentVersion,
    RegisteredAt,
    RunningTasksCount,
    /// Which task groups run on it (tasks with desired status RUNNING).
    TaskGroup,
}

#[derive(Debug, Clone)]
pub enum Test {
    Equals(String),
    In(Vec<String>),
    Exists,
    Matches(regex_lite::Regex),
    /// A value compared by its kind: a count, a version, a time.
    Compare(Order, Value),
    /// The negation of the test inside: `!=`, `!in`, `!exists`, `!~`.
    Negated(Box<Test>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Equal,
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    Count(i64),
    /// Numbers compared one by one, missing ones 0 (1.0 == 1.0.0 < 1.10.0).
    Version(Vec<u64>),
    Time(DateTime<Utc>),
}

impl Expr {
    /// The task groups its `task:group` tests name: where they run must be known to evaluate it.
    pub fn task_groups(&self) -> Vec<String> {
        match self {
            Expr::And(a, b) | Expr::Or(a, b) => [a.task_groups(), b.task_groups()].concat(),
            Expr::Not(e) => e.task_groups(),
            Expr::Test(Subject::TaskGroup, test) => test.arguments(),
            Expr::Test(..) => Vec::new(),
        }
    }
}

impl Test {
    fn arguments(&self) -> Vec<String> {
        match self {
            Test::Equals(v) => vec![v.clone()],
            Test::In(list) => list.clone(),
            Test::Negated(inner) => inner.arguments(),
            _ => Vec::new(),
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
                let (pattern, end) = pattern_at(&chars, i + 2)?;
                out.push(Token::Pattern(pattern));
                i = end;
                continue;
            }
            '>' | '<' => {
                let name = if c == '>' { "greater_than" } else { "less_than" };
                if next == Some('=') { (word(&format!("{name}_equal")), 2) } else { (word(name), 1) }
            }
            '=' if next == Some('=') => (word("equals"), 2),
            '!' if next == Some('=') => (word("not_equals"), 2),
            '&' if next == Some('&') => (word("and"), 2),
            '|' if next == Some('|') => (word("or"), 2),
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
                    let (pattern, end) = pattern_at(&chars, i + n)?;
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

/// A pattern runs to the next blank; closing parentheses it did not open end the group around it. A
/// quoted pattern is what the quotes hold, as any quoted argument.
fn pattern_at(chars: &[char], mut i: usize) -> Result<(String, usize), String> {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    if let Some(&q) = chars.get(i).filter(|c| **c == '\'' || **c == '"') {
        let end = chars[i + 1..].iter().position(|&c| c == q).ok_or("unterminated quote")?;
        return Ok((chars[i + 1..i + 1 + end].iter().collect(), i + end + 2));
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
    Ok((chars[start..i].iter().collect(), i))
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
        let test = match (op, ordered(&subject)) {
            ("equals", Some(kind)) => Test::Compare(Order::Equal, kind(&self.value()?)?),
            (o @ ("greater_than" | "greater_than_equal" | "less_than" | "less_than_equal"), Some(kind)) => {
                let order = match o {
                    "greater_than" => Order::Greater,
                    "greater_than_equal" => Order::GreaterOrEqual,
                    "less_than" => Order::Less,
                    _ => Order::LessOrEqual,
                };
                Test::Compare(order, kind(&self.value()?)?)
            }
            ("equals", None) => Test::Equals(self.value()?),
            ("in", None) => Test::In(self.list()?),
            ("exists", None) if subject != Subject::TaskGroup => Test::Exists,
            ("matches", None) if subject != Subject::TaskGroup => match self.next() {
                Some(Token::Pattern(p)) if !p.is_empty() => Test::Matches(
                    regex_lite::Regex::new(&format!("^(?:{p})$"))
                        .map_err(|e| format!("pattern {p:?} is not supported: {e}"))?,
                ),
                _ => return Err("expected a pattern after =~".into()),
            },
            (other, _) => return Err(format!("operator {other:?} is not supported for {subject:?}")),
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
        "agentVersion" => Ok(Subject::AgentVersion),
        "registeredAt" => Ok(Subject::RegisteredAt),
        "runningTasksCount" => Ok(Subject::RunningTasksCount),
        "task:group" => Ok(Subject::TaskGroup),
        other => Err(format!("subject {other:?} is not documented")),
    }
}

#[cfg(test)]
mod tests;
