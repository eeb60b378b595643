import pytest

from features.formula import MAX_FORMULA_LENGTH, FormulaError, parse_formula


def fractions(text: str) -> dict[str, float]:
    c = parse_formula(text)
    return dict(zip(c.elements, c.fractions, strict=True))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B4C", {"B": 0.8, "C": 0.2}),
        ("SiC", {"C": 0.5, "Si": 0.5}),
        ("Al1.5Si1.5N2.5O1.5", {"Al": 1.5 / 7, "N": 2.5 / 7, "O": 1.5 / 7, "Si": 1.5 / 7}),
        ("Ti(C0.5N0.5)", {"C": 0.25, "N": 0.25, "Ti": 0.5}),
        ("(HfZrTaNbTi)C5", {"C": 0.5, "Hf": 0.1, "Nb": 0.1, "Ta": 0.1, "Ti": 0.1, "Zr": 0.1}),
        ("[Co(NH3)6]Cl3", {"Cl": 3 / 28, "Co": 1 / 28, "H": 18 / 28, "N": 6 / 28}),
        ("Ca10(PO4)6(OH)2", {"Ca": 10 / 44, "H": 2 / 44, "O": 26 / 44, "P": 6 / 44}),
        ("TiCTi", {"C": 1 / 3, "Ti": 2 / 3}),
        ("  ZrO2 ", {"O": 2 / 3, "Zr": 1 / 3}),
        ("Co", {"Co": 1.0}),
        ("CO", {"C": 0.5, "O": 0.5}),
        ("Ti.5C.5", {"C": 0.5, "Ti": 0.5}),
    ],
)
def test_parses_to_normalised_fractions(text, expected):
    assert fractions(text) == pytest.approx(expected)


def test_the_same_compound_written_differently_has_one_key():
    assert parse_formula("TiB2").key == parse_formula("B2Ti").key == parse_formula("Ti2B4").key == "B0.666667Ti0.333333"
    assert parse_formula("TiB2").key != parse_formula("TiB").key


@pytest.mark.parametrize(
    ("text", "reason", "message"),
    [
        ("", "empty", "empty formula: give a chemical formula such as B4C"),
        ("   ", "empty", "empty formula: give a chemical formula such as B4C"),
        ("Xx2O", "unknown_element", 'unknown element symbol "Xx" at position 0'),
        ("TiQ", "unknown_element", 'unknown element symbol "Q" at position 2'),
        ("Ti(C0.5N0.5", "unbalanced_parentheses", 'unbalanced parentheses: "(" at position 2 is never closed'),
        ("TiC)2", "unbalanced_parentheses", 'unbalanced parentheses: ")" at position 3 closes no bracket'),
        (
            "Ti(CN]",
            "unbalanced_parentheses",
            'unbalanced parentheses: "]" at position 5 does not close "(" at position 2',
        ),
        ("Ti0C", "bad_amount", 'zero amount 0 for "Ti" at position 2: amounts must be > 0'),
        ("Ti-1C", "bad_amount", 'negative amount -1 for "Ti" at position 2: amounts must be > 0'),
        ("Ti(CN)0.0", "bad_amount", 'zero amount 0.0 for "(CN)" at position 6: amounts must be > 0'),
        ("()C", "empty", 'empty brackets "()" at position 0'),
        (
            "b4c",
            "unexpected_character",
            'unexpected character "b" at position 0 (element symbols start with a capital letter)',
        ),
        ("Ti C", "unexpected_character", 'unexpected character " " at position 2'),
        ("2TiB2", "unexpected_character", 'amount "2" at position 0 follows no element or bracket'),
        (
            "B4C" * 67,
            "too_long",
            f"formula is 201 characters long; at most {MAX_FORMULA_LENGTH} are accepted",
        ),
    ],
)
def test_bad_formulas_name_the_problem(text, reason, message):
    with pytest.raises(FormulaError) as caught:
        parse_formula(text)
    assert (caught.value.reason, caught.value.message, str(caught.value)) == (reason, message, message)
    assert isinstance(caught.value, ValueError)


def test_longest_accepted_formula():
    text = "B4C" * 66 + "Si"
    assert len(text) == MAX_FORMULA_LENGTH
    assert fractions(text)["Si"] == pytest.approx(1 / 331)
