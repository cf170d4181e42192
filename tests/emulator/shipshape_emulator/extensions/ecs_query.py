"""The ECS cluster query language, one evaluator for the emulator's ``ListContainerInstances`` filter and
its placement ``memberOf`` constraints (``ecs_listing`` and ``ecs_placement`` use it; as an extension it
patches nothing).

AWS (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-query-language.html):
``subject operator [argument]``; subjects ``agentConnected``, ``agentVersion``, ``attribute:<name>``,
``ec2InstanceId``, ``registeredAt``, ``runningTasksCount``, ``task:group``; operators ``==``/``equals``,
``!=``/``not_equals``, ``>``, ``>=``, ``<``, ``<=`` (and their word forms), ``exists``,
``!exists``/``not_exists``, ``in``, ``!in``/``not_in`` (an argument list ``[a, b]``), ``=~``/``matches``
and ``!~``/``not_matches`` ("an argument that conforms to the Java regular expression syntax"); compound
expressions with ``&&``/``and``, ``||``/``or``, ``!``/``not`` and parentheses for precedence. Arguments may
be quoted (``ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']``).

Emulated: every subject; ordering operators on ``runningTasksCount``, ``agentVersion`` (compared number by
number: 1.10.0 > 1.9.2) and ``registeredAt`` ("Valid date formats: 2018-06-18T22:28:28+00:00,
2018-06-18T22:28:28Z, 2018-06-18T22:28:28, 2018-06-18", UTC). A quoted argument is the text between the
quotes, patterns included (``=~ 'c5.*'``). Anything else raises ``Unsupported`` (the callers answer
``InvalidParameterException``), so a test never passes against an expression the emulator silently
misread. ``task:group`` matches an instance that runs a task of that group with desired status RUNNING.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable

Predicate = Callable[[Any, Callable[[Any], set[str]]], bool]


class Unsupported(ValueError):
    """An expression the emulator does not evaluate, or that is not well formed."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<open>\() | (?P<close>\)) | (?P<lopen>\[) | (?P<lclose>\]) | (?P<comma>,)
      | (?P<op>==|!=|=~|!~|>=|<=|>|<|&&|\|\||!in\b|!exists\b|!)
      | '(?P<sq>[^']*)' | "(?P<dq>[^"]*)"
      | (?P<word>[^\s()\[\],'"=!<>&|]+)
    )""",
    re.VERBOSE,
)
_WORDS = {"equals": "==", "not_equals": "!=", "greater_than": ">", "greater_than_equal": ">=",
          "less_than": "<", "less_than_equal": "<=", "not_in": "!in", "not_exists": "!exists",
          "matches": "=~", "not_matches": "!~", "and": "&&", "or": "||", "not": "!"}


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    at = 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        m = _TOKEN.match(text, at)
        if not m or m.end() == at:
            raise Unsupported(f"cannot read the expression at {text[at:]!r}")
        kind = next(k for k, v in m.groupdict().items() if v is not None)
        value = m.group(kind)
        at = m.end()
        if kind in ("sq", "dq"):
            out.append(("word", value))
        elif kind == "word" and value.lower() in _WORDS:
            out.append(("op", _WORDS[value.lower()]))
        else:
            out.append((kind, value))
        if out[-1] in (("op", "=~"), ("op", "!~")):
            # A pattern is taken as written, up to the next blank or a parenthesis it did not open; a quoted
            # one is what the quotes hold.
            rest = text[at:].lstrip()
            at = len(text) - len(rest)
            if rest[:1] in ("'", '"'):
                close = rest.find(rest[0], 1)
                if close < 0:
                    raise Unsupported("unterminated quote")
                out.append(("word", rest[1:close]))
                at += close + 1
                continue
            depth, end = 0, 0
            while end < len(rest) and not rest[end].isspace():
                if rest[end] == "(":
                    depth += 1
                elif rest[end] == ")":
                    if depth == 0:
                        break
                    depth -= 1
                end += 1
            out.append(("word", rest[:end]))
            at += end
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.at = tokens, 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise Unsupported("the expression ends too early")
        self.at += 1
        return token

    def expression(self) -> Predicate:
        left = self.conjunction()
        while self.peek() == ("op", "||"):
            self.at += 1
            a, b = left, self.conjunction()
            left = lambda ci, g, a=a, b=b: a(ci, g) or b(ci, g)  # noqa: E731
        return left

    def conjunction(self) -> Predicate:
        left = self.unary()
        while self.peek() == ("op", "&&"):
            self.at += 1
            a, b = left, self.unary()
            left = lambda ci, g, a=a, b=b: a(ci, g) and b(ci, g)  # noqa: E731
        return left

    def unary(self) -> Predicate:
        if self.peek() == ("op", "!"):
            self.at += 1
            inner = self.unary()
            return lambda ci, g: not inner(ci, g)
        if self.peek() == ("open", "("):
            self.at += 1
            inner = self.expression()
            if self.take() != ("close", ")"):
                raise Unsupported("expected ')'")
            return inner
        return self.test()

    def test(self) -> Predicate:
        kind, subject = self.take()
        if kind != "word":
            raise Unsupported(f"expected a subject, found {subject!r}")
        kind, op = self.take()
        if kind != "op" and op not in ("in", "exists"):
            raise Unsupported(f"expected an operator after {subject}, found {op!r}")
        value = _subject(subject, op)
        if op in ("exists", "!exists"):
            negate = op == "!exists"
            return lambda ci, g: (value(ci, g) is not None) != negate
        if op in ("in", "!in"):
            if self.take() != ("lopen", "["):
                raise Unsupported("expected '[' after in")
            wanted = [self.word()]
            while self.peek() == ("comma", ","):
                self.at += 1
                wanted.append(self.word())
            if self.take() != ("lclose", "]"):
                raise Unsupported("expected ']'")
            negate = op == "!in"
            return lambda ci, g: _any(value(ci, g), lambda v: v in wanted) != negate
        argument = self.word()
        if op in ("=~", "!~"):
            try:
                pattern = re.compile(argument)
            except re.error as err:
                raise Unsupported(f"pattern {argument!r}: {err}") from None
            negate = op == "!~"
            return lambda ci, g: _any(value(ci, g), lambda v: pattern.fullmatch(v) is not None) != negate
        if op in ("==", "!=") and subject in _ORDERED:
            of, parse = _ORDERED[subject]
            wanted_value = parse(argument)
            negate = op == "!="
            return lambda ci, g: (of(ci) == wanted_value) != negate
        if op in ("==", "!="):
            negate = op == "!="
            return lambda ci, g: _any(value(ci, g), lambda v: v == argument) != negate
        key = _ORDERED.get(subject)
        if key is None:
            raise Unsupported(f"ordering operators are not documented for {subject}")
        limit = key[1](argument)
        compare = {">": lambda n: n > limit, ">=": lambda n: n >= limit, "<": lambda n: n < limit, "<=": lambda n: n <= limit}[op]
        return lambda ci, g: compare(key[0](ci))

    def word(self) -> str:
        kind, value = self.take()
        if kind != "word":
            raise Unsupported(f"expected a value, found {value!r}")
        return value


def _version(text: str) -> tuple[int, ...]:
    """Numbers compared one by one, missing ones 0: 1.0 == 1.0.0 < 1.10.0."""
    try:
        parts = [int(part) for part in text.strip().lstrip("v").split(".")]
    except ValueError:
        raise Unsupported(f"{text!r} is not a version such as 1.14.5") from None
    return tuple(parts + [0] * (4 - len(parts)))


def _date(text: str) -> datetime:
    for form in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            moment = datetime.strptime(text.replace("Z", "+00:00"), form)
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    raise Unsupported(f"{text!r} is not one of the documented date formats")


def _registered(ci: Any) -> datetime:
    at = ci.registered_at
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


# Subjects compared by value, with ordering operators: what an instance has, and how an argument reads.
_ORDERED: dict[str, tuple[Callable[[Any], Any], Callable[[str], Any]]] = {
    "runningTasksCount": (lambda ci: ci.running_tasks_count, int),
    "agentVersion": (lambda ci: _version((ci.version_info or {}).get("agentVersion", "0")), _version),
    "registeredAt": (_registered, _date),
}


_NO_VALUE = object()  # an attribute set without a value: it exists, and equals nothing


def _any(value: Any, test: Callable[[str], bool]) -> bool:
    """A subject has one value, or (``task:group``) a set of them; ``None`` when it does not exist."""
    if value is None or value is _NO_VALUE:
        return False
    if isinstance(value, set):
        return any(test(v) for v in value)
    return test(value)


def _subject(name: str, op: str) -> Callable[[Any, Callable[[Any], set[str]]], Any]:
    if name == "ec2InstanceId":
        return lambda ci, g: ci.ec2_instance_id
    if name == "agentConnected":
        return lambda ci, g: "true" if ci.agent_connected else "false"
    if name == "runningTasksCount":
        return lambda ci, g: str(ci.running_tasks_count)
    if name == "agentVersion":
        return lambda ci, g: (ci.version_info or {}).get("agentVersion")
    if name == "registeredAt":
        return lambda ci, g: _registered(ci).isoformat()
    if name == "task:group":
        return lambda ci, g: g(ci)
    if name.startswith("attribute:") and len(name) > len("attribute:"):
        attr = name[len("attribute:") :]
        return lambda ci, g: (None if attr not in ci.attributes else (ci.attributes[attr] or _NO_VALUE))
    raise Unsupported(f"the subject {name!r} is not emulated")


def parse(expression: str | None) -> Predicate:
    """A predicate ``(container instance, groups_of) -> bool`` for an expression; ``groups_of(ci)`` gives the
    task groups running on an instance (for ``task:group``). An empty expression matches everything."""
    if expression is None or not expression.strip():
        return lambda ci, g: True
    parser = _Parser(_tokens(expression))
    predicate = parser.expression()
    if parser.peek() is not None:
        raise Unsupported(f"unexpected {parser.peek()[1]!r} after a complete expression")
    return predicate


def groups_on(backend: Any, cluster_name: str) -> Callable[[Any], set[str]]:
    """``groups_of`` for a cluster: the groups of the tasks with desired status RUNNING on an instance."""
    by_instance: dict[str, set[str]] = {}
    for task in backend.tasks.get(cluster_name, {}).values():
        if task.desired_status == "RUNNING" and task.container_instance_arn and task.group:
            by_instance.setdefault(task.container_instance_arn.rsplit("/", 1)[-1], set()).add(task.group)
    return lambda ci: by_instance.get(ci.container_instance_arn.rsplit("/", 1)[-1], set())


def install() -> None:
    """Nothing to patch: ``ecs_listing`` and ``ecs_placement`` call it."""


def tick() -> None:
    """No timers."""


def reset() -> None:
    """No state."""


ENDPOINTS: dict[str, dict[str, Any]] = {}
