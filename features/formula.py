"""Chemical formula text -> element fractions.

Accepted: element symbols with optional decimal amounts (``Al1.5Si1.5N2.5O1.5``), round or
square brackets, nested, each with an optional multiplier (``Ti(C0.5N0.5)``, ``(HfZrTaNbTi)C5``,
``Ca10(PO4)6(OH)2``); a repeated element adds up (``TiCTi`` = ``Ti2C``). Leading and trailing
spaces are ignored; no other whitespace, charges, hydrate dots or lower-case symbols.

Every refusal is a ``FormulaError`` with a machine-readable ``reason`` (one of ``REASONS``) and
a message that names the problem and its position, for a 422 on the field ``formula``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from features.elements import known_symbols

MAX_FORMULA_LENGTH = 200  # characters: the longest formula in the measured data has 30
REASONS = (
    "empty",
    "too_long",
    "unexpected_character",
    "unknown_element",
    "unbalanced_parentheses",
    "bad_amount",
    "element_without_data",  # raised by features.composition: the element table lacks a property
)
_TOKEN = re.compile(r"(?P<element>[A-Z][a-z]?)|(?P<open>[(\[])|(?P<close>[)\]])|(?P<number>\d+(?:\.\d*)?|\.\d+)")
_AMOUNT = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_CLOSING = {"(": ")", "[": "]"}


class FormulaError(ValueError):
    """A formula the service cannot read; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass(frozen=True)
class Composition:
    """Element fractions of one formula, elements in symbol order, fractions summing to 1."""

    formula: str
    elements: tuple[str, ...]
    fractions: tuple[float, ...]

    @property
    def key(self) -> str:
        """Canonical text of the composition: ``TiB2``, ``B2Ti`` and ``Ti2B4`` give the same key."""
        return "".join(f"{e}{f:.6g}" for e, f in zip(self.elements, self.fractions, strict=True))


@dataclass
class _Group:
    counts: defaultdict[str, float]
    opened_at: int  # position of its bracket (-1 for the whole formula)
    bracket: str


def parse_formula(text: str) -> Composition:
    """Element fractions of ``text``; raises ``FormulaError``."""
    formula = text.strip()
    if not formula:
        raise FormulaError("empty", "empty formula: give a chemical formula such as B4C")
    if len(formula) > MAX_FORMULA_LENGTH:
        raise FormulaError(
            "too_long", f"formula is {len(formula)} characters long; at most {MAX_FORMULA_LENGTH} are accepted"
        )
    counts = _count(formula)
    total = sum(counts.values())
    elements = tuple(sorted(counts))
    return Composition(formula, elements, tuple(counts[e] / total for e in elements))


def element_counts(text: str) -> dict[str, float]:
    """Atoms of each element in one formula unit as written (``B4C`` -> {B: 4, C: 1}); raises ``FormulaError``."""
    return dict(_count(text.strip()))


def _count(formula: str) -> dict[str, float]:
    stack = [_Group(defaultdict(float), -1, "")]
    position = 0
    while position < len(formula):
        match = _TOKEN.match(formula, position)
        if match is None:
            raise _unexpected(formula, position)
        kind, token, position = match.lastgroup, match.group(), match.end()
        if kind == "element":
            amount, position = _amount(formula, position, f'"{token}"')
            stack[-1].counts[_known(token, match.start())] += amount
        elif kind == "open":
            stack.append(_Group(defaultdict(float), match.start(), token))
        elif kind == "close":
            position = _close(formula, stack, token, match.start(), position)
        else:
            raise FormulaError(
                "unexpected_character",
                f'amount "{token}" at position {match.start()} follows no element or bracket',
            )
    if len(stack) > 1:
        group = stack[-1]
        raise FormulaError(
            "unbalanced_parentheses",
            f'unbalanced parentheses: "{group.bracket}" at position {group.opened_at} is never closed',
        )
    return stack[0].counts


def _close(formula: str, stack: list[_Group], token: str, at: int, position: int) -> int:
    """Pop the group ``token`` closes, multiply it by its amount, add it to the enclosing group."""
    group = stack[-1]
    if len(stack) == 1:
        raise FormulaError(
            "unbalanced_parentheses", f'unbalanced parentheses: "{token}" at position {at} closes no bracket'
        )
    if _CLOSING[group.bracket] != token:
        raise FormulaError(
            "unbalanced_parentheses",
            f'unbalanced parentheses: "{token}" at position {at} does not close "{group.bracket}" at position '
            f"{group.opened_at}",
        )
    if not group.counts:
        raise FormulaError("empty", f'empty brackets "{group.bracket}{token}" at position {group.opened_at}')
    amount, position = _amount(formula, position, f'"{formula[group.opened_at : at + 1]}"')
    stack.pop()
    for element, count in group.counts.items():
        stack[-1].counts[element] += count * amount
    return position


def _amount(formula: str, position: int, owner: str) -> tuple[float, int]:
    """The amount written at ``position`` (1 when none), and the position after it."""
    match = _AMOUNT.match(formula, position)
    if match is None:
        return 1.0, position
    value = float(match.group())
    if value <= 0:
        sign = "negative" if value < 0 else "zero"
        raise FormulaError(
            "bad_amount", f"{sign} amount {match.group()} for {owner} at position {position}: amounts must be > 0"
        )
    return value, match.end()


def _known(symbol: str, position: int) -> str:
    if symbol not in known_symbols():
        raise FormulaError("unknown_element", f'unknown element symbol "{symbol}" at position {position}')
    return symbol


def _unexpected(formula: str, position: int) -> FormulaError:
    char = formula[position]
    hint = " (element symbols start with a capital letter)" if char.islower() else ""
    return FormulaError("unexpected_character", f'unexpected character "{char}" at position {position}{hint}')
