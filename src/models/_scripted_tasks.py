"""Simple tasks the scripted stand-in can solve: arithmetic and lists of numbers or files.

`code_for_task` writes a Python program for the coder persona; `evaluate_arithmetic` lets the
generic persona answer arithmetic directly. Both parse, never `eval`, the task text.
"""

from __future__ import annotations

import ast
import operator
import re

MAX_LIST_LENGTH = 10_000
_MAX_EXPONENT = 1_000
_MAX_RESULT_DIGITS = 4_300  # CPython's int-to-str limit

_EXPRESSION_CHARS = re.compile(r"[\d\s+\-*/%().]+")
_OPERATORS = re.compile(r"\d\s*(\*\*|[+\-*/%])\s*[\d(]")
_FIRST_N = re.compile(
    r"\bfirst\s+(\d+)\s+(?:(primes?|perfect squares?|squares?|even|odd|fibonacci)"
    r"(?:\s+(?:numbers|integers|terms))?|(?:natural |positive |whole )?(?:numbers|integers))\b",
    re.IGNORECASE,
)
_RANGE = re.compile(
    r"\b(?:numbers?|integers?|count(?:ing)?|list)\s+(?:from|between)\s+(-?\d+)\s+(?:to|and|through)\s+(-?\d+)",
    re.IGNORECASE,
)
_FILES = re.compile(r"\b(?:list|show|print)\b.*\bfiles?\b", re.IGNORECASE)

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}

_PRIMES = """def first_primes(count):
    primes = []
    candidate = 2
    while len(primes) < count:
        if all(candidate % p for p in primes if p * p <= candidate):
            primes.append(candidate)
        candidate += 1
    return primes


print(first_primes({n}))"""

_FIBONACCI = """numbers = []
a, b = 0, 1
for _ in range({n}):
    numbers.append(a)
    a, b = b, a + b
print(numbers)"""


def find_arithmetic(text: str) -> str | None:
    """The longest arithmetic expression in `text` (digits, + - * / % ** and parentheses), or None."""
    best: str | None = None
    for match in _EXPRESSION_CHARS.finditer(text):
        candidate = match.group().strip().rstrip(".").strip()
        if not _OPERATORS.search(candidate) or (best is not None and len(candidate) <= len(best)):
            continue
        if evaluate_arithmetic(candidate) is not None:
            best = candidate
    return best


def evaluate_arithmetic(expression: str) -> int | float | None:
    """The value of a plain arithmetic expression, or None if it is not one or is too large to compute."""
    try:
        tree = ast.parse(expression, mode="eval")
        return _evaluate(tree.body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, TypeError, RecursionError):
        return None


def _evaluate(node: ast.expr) -> int | float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value  # type: ignore[no-any-return]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))  # type: ignore[no-any-return]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise ValueError("exponent too large")
        result = _BINARY[type(node.op)](left, right)
        if isinstance(result, int) and result.bit_length() > _MAX_RESULT_DIGITS * 3:
            raise ValueError("result too large")
        return result  # type: ignore[no-any-return]
    raise ValueError("not arithmetic")


def code_for_task(task: str) -> str:
    """A short Python program that solves `task`, or prints it back when the task is not one we know."""
    if match := _RANGE.search(task):
        start, stop = int(match.group(1)), int(match.group(2))
        step = 1 if stop >= start else -1
        stop = start + step * min(abs(stop - start), MAX_LIST_LENGTH)
        return f"print(list(range({start}, {stop + step}{', -1' if step < 0 else ''})))"
    if match := _FIRST_N.search(task):
        kind = (match.group(2) or "").lower().removeprefix("perfect ").removesuffix("s")
        return _first_n_code(min(int(match.group(1)), MAX_LIST_LENGTH), kind)
    if _FILES.search(task):
        return "import os\n\nprint(sorted(os.listdir('.')))"
    if expression := find_arithmetic(task):
        return f"print({expression})"
    return f"print({first_line(task, 200)!r})"


def _first_n_code(n: int, kind: str) -> str:
    if kind == "prime":
        return _PRIMES.format(n=n)
    if kind == "fibonacci":
        return _FIBONACCI.format(n=n)
    if kind == "square":
        return f"print([i * i for i in range(1, {n + 1})])"
    if kind == "even":
        return f"print([2 * i for i in range(1, {n + 1})])"
    if kind == "odd":
        return f"print([2 * i + 1 for i in range({n})])"
    return f"print(list(range(1, {n + 1})))"


def first_line(text: str, limit: int) -> str:
    """The first non-empty line of `text`, whitespace collapsed, cut to `limit` characters."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
