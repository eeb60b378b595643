"""Request bodies parsed as strict JSON: an object with the same key twice is refused (400) instead
of the last value silently winning ({"SiC": 1.0, "SiC": 0.5} is ambiguous, not a composition).

FastAPI parses the body with ``Request.json``; the route class below hands it a request whose
``json`` raises a ``JSONDecodeError`` whose message says what is wrong (invalid UTF-8, a key given
twice, nesting too deep for the parser, an integer over Python's 4,300-digit conversion limit, or
the standard library's own syntax message), which FastAPI turns into the "invalid JSON" validation
error that api.transport.handlers maps to 400 with that message.

``load_object_with_list``: the /batch routes' body, whose one long member (``materials``) is read
item by item with the standard library's C scanner and refused as soon as it holds one item too
many, so a body of millions of tiny items costs the limit's worth of parsing, not its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

_scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]  # C
_BLANK = re.compile(r"[ \t\n\r]*")  # JSON's whitespace (RFC 8259)


class _DuplicateKey(ValueError):
    pass


class TooManyItems(ValueError):
    """The streamed list held more than the items allowed."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys)


def _text(body: bytes | str) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8-sig")  # a leading byte-order mark is tolerated, as json.loads did
    except UnicodeDecodeError as exc:
        message = f"not valid UTF-8: byte {exc.start} cannot start or continue a character"
        raise json.JSONDecodeError(message, "", 0) from None


def _decoding(parse: Callable[[], Any], text: str) -> Any:
    """``parse()`` with every way it can fail as a JSONDecodeError saying what is wrong."""
    try:
        return parse()
    except (json.JSONDecodeError, TooManyItems):
        raise
    except _DuplicateKey as exc:
        raise json.JSONDecodeError(f"duplicate key {exc.args[0]!r}", text, 0) from None
    except RecursionError:
        raise json.JSONDecodeError("nested too deep (arrays or objects within each other)", text, 0) from None
    except ValueError:  # int() of an integer literal over sys.get_int_max_str_digits() (4,300) digits
        raise json.JSONDecodeError("a number is too long (integers may have at most 4,300 digits)", text, 0) from None


def loads_strict(body: bytes | str) -> Any:
    text = _text(body)
    return _decoding(lambda: _DECODER.decode(text), text)


def _skip(text: str, at: int) -> int:
    return _BLANK.match(text, at).end()  # type: ignore[union-attr]  # matches the empty string


def _expect(text: str, at: int, token: str, message: str) -> int:
    if not text.startswith(token, at):
        raise json.JSONDecodeError(message, text, at)
    return _skip(text, at + 1)


def _array(text: str, at: int, max_items: int) -> tuple[list[Any], int]:
    """The array starting at ``text[at] == "["``, read item by item; the index after it."""
    items: list[Any] = []
    at = _skip(text, at + 1)
    if text.startswith("]", at):
        return items, at + 1
    while True:
        if len(items) == max_items:
            raise TooManyItems(max_items)
        item, at = _DECODER.raw_decode(text, at)
        items.append(item)
        at = _skip(text, at)
        if text.startswith("]", at):
            return items, at + 1
        at = _expect(text, at, ",", "Expecting ',' delimiter")


def _object_with_list(text: str, list_key: str, max_items: int) -> tuple[dict[str, Any], list[Any] | None]:
    members: dict[str, Any] = {}
    streamed: list[Any] | None = None
    at = _expect(text, _skip(text, 0), "{", "Expecting a JSON object")
    closed = text.startswith("}", at)
    while not closed:
        if not text.startswith('"', at):
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, at)
        key, at = _scanstring(text, at + 1)
        if key in members or (key == list_key and streamed is not None):
            raise _DuplicateKey(key)
        at = _expect(text, _skip(text, at), ":", "Expecting ':' delimiter")
        if key == list_key and text.startswith("[", at):
            streamed, at = _array(text, at, max_items)
        else:
            members[key], at = _DECODER.raw_decode(text, at)
        at = _skip(text, at)
        closed = text.startswith("}", at)
        if not closed:
            at = _expect(text, at, ",", "Expecting ',' delimiter")
    if _skip(text, at + 1) != len(text):
        raise json.JSONDecodeError("Extra data", text, at + 1)
    return members, streamed


def load_object_with_list(body: bytes, list_key: str, max_items: int) -> tuple[dict[str, Any], list[Any] | None]:
    """A JSON object's members other than ``list_key``, and ``list_key``'s array (None when it is
    absent or not an array: then it is among the members). Raises ``TooManyItems`` on reaching
    item ``max_items + 1`` (nothing after it is parsed) and ``JSONDecodeError`` as ``loads_strict``."""
    text = _text(body)
    result: tuple[dict[str, Any], list[Any] | None] = _decoding(
        lambda: _object_with_list(text, list_key, max_items), text
    )
    return result


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
