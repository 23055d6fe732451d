"""A safe arithmetic calculator tool.

The expression is parsed with `ast` and evaluated by walking a whitelist of node types; nothing is ever handed to
`eval`. Every operation is bounded before it runs (input length, nesting depth, the size of integer powers and
factorials), so a model cannot make the agent hang or exhaust memory with `9**9**9`.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from langchain_core.tools import ToolException, tool

__all__ = ["calculator", "evaluate"]

Number = int | float

MAX_INPUT_CHARS = 2000
# Nesting depth of parentheses, calls, unary signs and right-hand operands. Left-associative chains such as
# `1+2+3+...` are folded iteratively and do not count, so a long sum is fine while `((((...))))` is not.
MAX_DEPTH = 50
# Integers are kept exact up to this many bits (about 3,000 decimal digits, below CPython's 4,300-digit limit
# on int -> str conversion). Powers are checked *before* they are computed.
MAX_INT_BITS = 10_000
MAX_FACTORIAL = 1000
MAX_ROUND_DIGITS = 100
_SHOWN_EXPRESSION_CHARS = 60

_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


class _Refused(Exception):
    """The expression cannot be evaluated; the message is the reason, written for the model."""


_TOO_LARGE = "the result would be too large"


def _bits(value: int) -> int:
    # log2 rounded down; comparable with the estimate made for powers.
    return abs(value).bit_length() - 1


def _checked(value: object) -> Number:
    """Validate an intermediate result so that no later step works on something huge or non-real."""
    if isinstance(value, bool):  # bool is an int subclass; never let it through as a number
        return int(value)
    if isinstance(value, int):
        if _bits(value) > MAX_INT_BITS:
            raise _Refused(_TOO_LARGE)
        return value
    if isinstance(value, float):
        if math.isnan(value):
            raise _Refused("the result is not a number")
        if math.isinf(value):
            raise _Refused(_TOO_LARGE)
        return value
    if isinstance(value, complex):
        raise _Refused("the result is not a real number (e.g. a fractional power of a negative number)")
    raise _Refused("the result is not a number")


def _exact_power_too_large(base: Number, exponent: Number) -> bool:
    # Estimated from log2 before computing: building 9**387420489 just to refuse it would hang.
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0 or abs(base) <= 1:
        return False
    return exponent.bit_length() > 64 or exponent * math.log2(abs(base)) > MAX_INT_BITS


def _power(base: Number, exponent: Number) -> Number:
    if _exact_power_too_large(base, exponent):
        raise _Refused(_TOO_LARGE)
    # Float powers are cheap: they overflow (OverflowError) or underflow to 0.0 at once.
    result = _checked(operator.pow(base, exponent))
    if result == 0 and base != 0:  # 2**-10000 underflows; "0" would be a wrong answer, not a rounded one
        raise _Refused("the result is too close to zero to represent")
    return result


def _factorial(value: Number) -> int:
    if isinstance(value, float):
        if not value.is_integer():
            raise _Refused("factorial needs a whole number")
        value = int(value)
    if value < 0:
        raise _Refused("factorial needs a number that is not negative")
    if value > MAX_FACTORIAL:
        raise _Refused(f"factorial is limited to numbers up to {MAX_FACTORIAL}")
    return math.factorial(value)


def _round(value: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return round(value)
    if isinstance(ndigits, float):
        if not ndigits.is_integer():
            raise _Refused("round's second argument (digits) must be a whole number")
        ndigits = int(ndigits)
    # round(5, -10**9) would compute 10**(10**9) internally.
    if abs(ndigits) > MAX_ROUND_DIGITS:
        raise _Refused(f"round's digits must be between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}")
    return round(value, ndigits)


def _log(value: Number, base: Number | None = None) -> float:
    return math.log(value) if base is None else math.log(value, base)


def _min(*values: Number) -> Number:
    return min(values)


def _max(*values: Number) -> Number:
    return max(values)


@dataclass(frozen=True)
class _Function:
    call: Callable[..., Number]
    min_args: int
    max_args: int | None  # None: any number


_FUNCTIONS: dict[str, _Function] = {
    "sqrt": _Function(math.sqrt, 1, 1),
    "log": _Function(_log, 1, 2),
    "ln": _Function(math.log, 1, 1),
    "log10": _Function(math.log10, 1, 1),
    "log2": _Function(math.log2, 1, 1),
    "exp": _Function(math.exp, 1, 1),
    "sin": _Function(math.sin, 1, 1),
    "cos": _Function(math.cos, 1, 1),
    "tan": _Function(math.tan, 1, 1),
    "asin": _Function(math.asin, 1, 1),
    "acos": _Function(math.acos, 1, 1),
    "atan": _Function(math.atan, 1, 1),
    "abs": _Function(abs, 1, 1),
    "round": _Function(_round, 1, 2),
    "floor": _Function(math.floor, 1, 1),
    "ceil": _Function(math.ceil, 1, 1),
    "factorial": _Function(_factorial, 1, 1),
    "min": _Function(_min, 1, None),
    "max": _Function(_max, 1, None),
}

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
}

# Friendly reasons for the constructs a model is most likely to try; anything else gets a generic refusal.
_REFUSALS: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access ('.name') is not allowed",
    ast.Subscript: "indexing ('[...]') is not allowed",
    ast.List: "lists are not supported",
    ast.Tuple: "tuples are not supported (a ',' outside a function call?)",
    ast.Set: "sets are not supported",
    ast.Dict: "dictionaries are not supported",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.Compare: "comparisons are not supported",
    ast.BoolOp: "'and'/'or' are not supported",
    ast.IfExp: "'if ... else' is not supported",
    ast.NamedExpr: "assignment (':=') is not allowed",
    ast.JoinedStr: "text is not supported; give numbers only",
    ast.Starred: "'*' unpacking is not allowed",
}

_ALLOWED_HINT = "use numbers, + - * / // % ** (or ^), parentheses, pi, e, tau and the functions " + ", ".join(
    sorted(_FUNCTIONS)
)


class _Evaluator:
    def eval(self, node: ast.AST, depth: int = 0) -> Number:
        if depth > MAX_DEPTH:
            raise _Refused(f"it is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.Expression):
            return self.eval(node.body, depth)
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.BinOp):
            return self._binary(node, depth)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node, depth)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        raise _Refused(_REFUSALS.get(type(node), f"'{type(node).__name__}' is not supported; {_ALLOWED_HINT}"))

    @staticmethod
    def _constant(node: ast.Constant) -> Number:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float, complex)):
            if isinstance(value, (str, bytes)):
                raise _Refused("text is not supported; give numbers only")
            raise _Refused(f"{value!r} is not a number")
        if isinstance(value, complex):
            raise _Refused("complex numbers are not supported")
        return _checked(value)

    def _binary(self, node: ast.BinOp, depth: int) -> Number:
        # Walk down the left spine so `1+2+...+n` costs no recursion: only right operands nest.
        chain: list[tuple[ast.operator, ast.expr]] = []
        left: ast.expr = node
        while isinstance(left, ast.BinOp):
            chain.append((left.op, left.right))
            left = left.left
        value = self.eval(left, depth + 1)
        for op, right in reversed(chain):
            func = _BINARY.get(type(op))
            if func is None:
                raise _Refused(f"the operator '{type(op).__name__}' is not supported; {_ALLOWED_HINT}")
            value = _checked(func(value, self.eval(right, depth + 1)))
        return value

    def _unary(self, node: ast.UnaryOp, depth: int) -> Number:
        operand = self.eval(node.operand, depth + 1)
        if isinstance(node.op, ast.USub):
            return _checked(-operand)
        if isinstance(node.op, ast.UAdd):
            return operand
        raise _Refused(f"the operator '{type(node.op).__name__}' is not supported; {_ALLOWED_HINT}")

    @staticmethod
    def _name(node: ast.Name) -> Number:
        # Small models write `PI` or `Pi`; names are matched without regard to case.
        key = node.id.lower()
        if key in _CONSTANTS:
            return _CONSTANTS[key]
        if key in _FUNCTIONS:
            raise _Refused(f"'{node.id}' is a function: call it with parentheses, e.g. {key}(2)")
        raise _Refused(f"unknown name '{node.id}'; {_ALLOWED_HINT}")

    def _call(self, node: ast.Call, depth: int) -> Number:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, (ast.Constant, ast.BinOp, ast.UnaryOp)):
                raise _Refused("write multiplication explicitly with '*', e.g. 2*(3+4)")
            raise _Refused(_REFUSALS.get(type(node.func), "only the listed functions can be called"))
        name = node.func.id
        func = _FUNCTIONS.get(name.lower())
        if func is None:
            raise _Refused(f"unknown function '{name}'; {_ALLOWED_HINT}")
        if node.keywords:
            raise _Refused(f"{name}() takes positional arguments only")
        count = len(node.args)
        if count < func.min_args or (func.max_args is not None and count > func.max_args):
            expected = (
                f"{func.min_args}"
                if func.min_args == func.max_args
                else f"{func.min_args} or more"
                if func.max_args is None
                else f"{func.min_args} to {func.max_args}"
            )
            raise _Refused(f"{name}() takes {expected} argument(s), got {count}")
        args = [self.eval(arg, depth + 1) for arg in node.args]
        return _checked(func.call(*args))


# Models copy maths from prose; named escapes keep these look-alike characters visible in the source.
_REPLACEMENTS = {
    "\N{MULTIPLICATION SIGN}": "*",
    "\N{MIDDLE DOT}": "*",
    "\N{BULLET OPERATOR}": "*",
    "\N{DIVISION SIGN}": "/",
    "\N{MINUS SIGN}": "-",
    "\N{EN DASH}": "-",
    "\N{EM DASH}": "-",
    "^": "**",  # nobody asking a calculator means XOR
    "\N{SUPERSCRIPT TWO}": "**2",
    "\N{SUPERSCRIPT THREE}": "**3",
    "\N{GREEK SMALL LETTER PI}": "pi",
}
_THOUSANDS = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?![\w,])")
_CALL = re.compile(r"[A-Za-z_]\w*\s*\(")


def _normalise(expression: str) -> str:
    text = expression.strip()
    for old, new in _REPLACEMENTS.items():
        text = text.replace(old, new)
    text = text.rstrip("= \t\r\n")
    # `1,000,000` is a thousands-separated number only when no function call could make the comma an
    # argument separator: `max(1,000)` must stay two arguments.
    if "," in text and not _CALL.search(text):
        text = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text)
    return text


def _format(value: Number) -> str:
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))  # also turns -0.0 into 0
    return f"{value:.12g}"


def evaluate(expression: str) -> str:
    """Evaluate an arithmetic expression safely and format the result.

    Args:
        expression: The expression, e.g. `3.5*12 + 7.25` or `sqrt(2)/2`.

    Returns:
        The result: exact for integers, floats rounded to 12 significant digits.

    Raises:
        ToolException: When the expression is invalid, unsupported or too expensive; the message says why.
    """
    shown = expression if len(expression) <= _SHOWN_EXPRESSION_CHARS else expression[:_SHOWN_EXPRESSION_CHARS] + "…"

    def refuse(reason: str) -> ToolException:
        return ToolException(f"Cannot evaluate {shown!r}: {reason}.")

    if len(expression) > MAX_INPUT_CHARS:
        raise refuse(f"the expression is longer than {MAX_INPUT_CHARS} characters")
    text = _normalise(expression)
    if not text:
        raise refuse("the expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        detail = f" ({exc.msg})" if exc.msg and "invalid syntax" not in exc.msg else ""
        raise refuse(f"it is not a valid arithmetic expression{detail}") from None
    except (RecursionError, MemoryError):
        raise refuse("it is nested too deeply") from None
    try:
        return _format(_Evaluator().eval(tree))
    except _Refused as exc:
        raise refuse(str(exc)) from None
    except ZeroDivisionError:
        raise refuse("division by zero") from None
    except OverflowError:
        raise refuse(_TOO_LARGE) from None
    except RecursionError:
        raise refuse("it is nested too deeply") from None
    except (ValueError, TypeError) as exc:
        # math's own errors: "math domain error", "factorial() not defined for negative values", ...
        reason = "a value is outside the function's domain" if "domain" in str(exc) else str(exc)
        raise refuse(reason) from None


@tool(parse_docstring=True)
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression and return the result.

    Supports + - * / // % ** (^ also means power), parentheses, pi, e, tau and the functions sqrt, log (natural, or
    log(x, base)), log10, log2, exp, sin, cos, tan, asin, acos, atan (radians), abs, round, floor, ceil,
    factorial, min and max. Use it for any calculation instead of computing in your head.

    Args:
        expression: The expression to evaluate, e.g. "3.5*12 + 7.25" or "sqrt(2)/2".
    """
    return evaluate(expression)
