"""Reading JSON request bodies as Backstage's ``express.json()`` does, with Node's error messages.

Backstage parses bodies with body-parser in strict mode (the body must start with ``{`` or
``[``) and ``JSON.parse``; a body that does not parse is a 400 ``InputError`` whose message is
V8's (``Unexpected end of JSON input``, ``Expected ',' or '}' after property value in JSON at
position 7``, ...). :func:`parse_body` parses with orjson and, on failure, re-reads the body
with the standard library to learn what went wrong and where, and words it as V8 does.
Positions are UTF-16 code units, as in JavaScript.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_WHITESPACE = " \t\n\r"
_LITERALS = ("true", "false", "null")
#: V8 quotes the whole source below this length, otherwise 10 characters either side of the error.
_CONTEXT = 10
_SPECIAL_SOURCES = {"undefined", "NaN", "Infinity", "[object Object]"}
#: The standard library's message, V8's, and how far past the standard library's position V8 reports.
_AT_POSITION = {
    "Expecting ':' delimiter": ("Expected ':' after property name in JSON", 0),
    "Invalid control character at": ("Bad control character in string literal in JSON", 0),
    "Invalid \\escape": ("Bad escaped character in JSON", 1),
    "Extra data": ("Unexpected non-whitespace character after JSON", 0),
}
_HEX_DIGITS = "0123456789abcdefABCDEF"
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


class JsonSyntaxError(ValueError):
    """A request body that is not JSON; ``str(error)`` is Node's ``JSON.parse`` message."""


def parse_body(text: str) -> Any:
    """Parse a JSON request body; raise :class:`JsonSyntaxError` with Node's message if it does not parse."""
    start = len(text) - len(text.lstrip(_WHITESPACE))
    if start == len(text):
        raise JsonSyntaxError("Unexpected end of JSON input")
    if text[start] not in "{[":
        raise JsonSyntaxError(_unexpected_token(text, start))
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise JsonSyntaxError(node_message(text, error)) from None


def node_message(text: str, error: orjson.JSONDecodeError) -> str:
    """V8's message for ``JSON.parse(text)`` failing where orjson raised ``error``."""
    try:
        json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as decode_error:
        return _from_decode_error(text, decode_error.msg.split(": ")[0], decode_error.pos)
    except (ValueError, RecursionError):
        pass
    # Only orjson refuses it: NaN/Infinity (V8 too), numbers beyond a double, or nesting too deep.
    if "depth" in error.msg:
        return "Request body nests deeper than 1024 levels"
    if 0 <= error.pos < len(text) and text[error.pos] not in _WHITESPACE:
        return _unexpected_token(text, error.pos)
    return f"Unexpected token in JSON at position {_js_index(text, error.pos)}"


def _from_decode_error(text: str, msg: str, pos: int) -> str:
    bad_number = _bad_number(text, pos)
    if bad_number:
        return bad_number
    if msg in _AT_POSITION:
        message, past = _AT_POSITION[msg]
        return f"{message} at position {_js_index(text, pos + past)}"
    if msg == "Invalid \\uXXXX escape":
        end = pos + 1
        while end < len(text) and end < pos + 5 and text[end] in _HEX_DIGITS:
            end += 1
        return f"Bad Unicode escape in JSON at position {_js_index(text, end)}"
    if msg.startswith("Unterminated string"):
        return f"Unterminated string in JSON at position {_js_index(text, len(text))}"
    if msg == "Expecting ',' delimiter":
        expected = "',' or '}' after property value" if _inside_object(text, pos) else "',' or ']' after array element"
        return f"Expected {expected} in JSON at position {_js_index(text, pos)}"
    if msg.startswith("Expecting property name"):
        after_brace = text[:pos].rstrip(_WHITESPACE).endswith("{")
        expected = "property name or '}'" if after_brace else "double-quoted property name"
        return f"Expected {expected} in JSON at position {_js_index(text, pos)}"
    if msg == "Expecting value":
        return _unexpected_value(text, pos)
    return f"Unexpected token in JSON at position {_js_index(text, pos)}"


def _bad_number(text: str, pos: int) -> str | None:
    """V8's message for a number cut short (``1.``, ``1e``, ``1e+``) where the standard library stopped."""
    if pos == 0 or not text[pos - 1].isdigit() or text[pos : pos + 1] not in (".", "e", "E"):
        return None
    end = pos + 1
    if text[pos] == ".":
        message = "Unterminated fractional number"
    else:
        message = "Exponent part is missing a number"
        end += text[end : end + 1] in ("+", "-")
    return f"{message} in JSON at position {_js_index(text, end)}"


def _unexpected_value(text: str, pos: int) -> str:
    """Where a value was expected: a truncated literal or number, the end, or an unexpected token."""
    if text[pos : pos + 1] == "-":
        return f"No number after minus sign in JSON at position {_js_index(text, pos + 1)}"
    for literal in _LITERALS:
        if text[pos : pos + 1] == literal[0]:
            matched = 0
            while matched < len(literal) and text[pos + matched : pos + matched + 1] == literal[matched]:
                matched += 1
            pos += matched
            break
    if pos >= len(text):
        return "Unexpected end of JSON input"
    return _unexpected_token(text, pos)


def _unexpected_token(text: str, pos: int) -> str:
    """V8's ``Unexpected token 'c', "..." is not valid JSON`` (with 10 characters of context on long input)."""
    if text in _SPECIAL_SOURCES:
        return f'"{text}" is not valid JSON'
    token = text[pos]
    if len(text) < 2 * _CONTEXT + 1:
        return f"Unexpected token '{token}', \"{text}\" is not valid JSON"
    if pos < _CONTEXT:
        return f"Unexpected token '{token}', \"{text[: pos + _CONTEXT]}\"... is not valid JSON"
    if pos < len(text) - _CONTEXT:
        return f"Unexpected token '{token}', ...\"{text[pos - _CONTEXT : pos + _CONTEXT]}\"... is not valid JSON"
    return f"Unexpected token '{token}', ...\"{text[pos - _CONTEXT :]}\" is not valid JSON"


def _inside_object(text: str, pos: int) -> bool:
    """Whether ``pos`` is directly inside an object (not an array), skipping strings."""
    open_brackets: list[str] = []
    for match in _STRING_OR_BRACKET.finditer(text, 0, pos):
        char = match.group()
        if char in "[{":
            open_brackets.append(char)
        elif char in "]}" and open_brackets:
            open_brackets.pop()
    return bool(open_brackets) and open_brackets[-1] == "{"


def _js_index(text: str, pos: int) -> int:
    """A Python string index as a JavaScript (UTF-16) one."""
    prefix = text[:pos]
    return pos + sum(1 for char in prefix if ord(char) > 0xFFFF)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
