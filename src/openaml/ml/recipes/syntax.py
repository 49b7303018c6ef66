"""Recipe expression syntax (recipes.md §2): names, quoted names, integers and function calls."""

from __future__ import annotations

from dataclasses import dataclass

from openaml.ml.errors import InputError

MAX_NESTING = 16  # function calls inside function calls in one expression
MAX_INTEGER_DIGITS = 9  # every integer argument has a range far below 10**9
EXCERPT_CHARACTERS = 80  # of a recipe's text quoted in an error message


class RecipeError(InputError):
    """A recipe that cannot be used; the message names the offending part."""


@dataclass(frozen=True)
class Name:
    text: str


@dataclass(frozen=True)
class Integer:
    value: int


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Expr, ...]


Expr = Name | Integer | Call

_SPECIAL = set(",'\"\t\r\n()\\")


def excerpt(text: str) -> str:
    """The text quoted for an error message, shortened to EXCERPT_CHARACTERS."""
    if len(text) > EXCERPT_CHARACTERS:
        text = text[:EXCERPT_CHARACTERS - 3] + "..."
    return repr(text)


def strip_comment(text: str) -> str:
    """Drop everything after `//` outside single quotes."""
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if quoted and ch == "\\":
            i += 2
            continue
        if ch == "'":
            quoted = not quoted
        elif not quoted and text.startswith("//", i):
            return text[:i]
        i += 1
    return text


def parse_expression(text: str) -> Expr:
    """Parse one expression; raise RecipeError describing the syntax problem."""
    parser = _Parser(strip_comment(text))
    expr = parser.expression()
    parser.skip_space()
    if parser.pos != len(parser.text):
        raise RecipeError(f"unexpected text {excerpt(parser.text[parser.pos:])}")
    return expr


def needs_quotes(name: str) -> bool:
    """Whether a name must be single-quoted inside an expression."""
    return not name[:1].isalpha() or any(c in _SPECIAL or c.isspace() for c in name)


def quote_name(name: str) -> str:
    """The name as written in a canonical expression (quoted only when needed)."""
    if not needs_quotes(name):
        return name
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0  # calls open at pos: the recursion is bounded by MAX_NESTING

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def expression(self) -> Expr:
        self.skip_space()
        if self.pos >= len(self.text):
            raise RecipeError("missing expression")
        if self.text[self.pos] == "'":
            return Name(self._quoted())
        start = self.pos
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in _SPECIAL or ch.isspace():
                break
            self.pos += 1
        token = self.text[start:self.pos]
        if not token:
            raise RecipeError(f"unexpected {self.text[self.pos]!r} at position {self.pos + 1}")
        self.skip_space()
        if self.pos < len(self.text) and self.text[self.pos] == "(":
            self.pos += 1
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise RecipeError(f"functions are nested more than {MAX_NESTING} deep")
            call = Call(token, self._arguments())
            self.depth -= 1
            return call
        if token.isascii() and token.isdigit():
            if len(token) > MAX_INTEGER_DIGITS:
                raise RecipeError(f"the integer {token[:MAX_INTEGER_DIGITS]}... is too large")
            return Integer(int(token))
        if not token[0].isalpha():
            raise RecipeError(f"name {excerpt(token)} must start with a letter or be single-quoted")
        return Name(token)

    def _quoted(self) -> str:
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if ch == "'":
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        raise RecipeError("unterminated quoted name")

    def _arguments(self) -> tuple[Expr, ...]:
        args: list[Expr] = []
        self.skip_space()
        if self.pos < len(self.text) and self.text[self.pos] == ")":
            self.pos += 1
            return ()
        while True:
            args.append(self.expression())
            self.skip_space()
            if self.pos >= len(self.text):
                raise RecipeError("missing ')'")
            ch = self.text[self.pos]
            self.pos += 1
            if ch == ")":
                return tuple(args)
            if ch != ",":
                raise RecipeError(f"expected ',' or ')' but found {ch!r}")
