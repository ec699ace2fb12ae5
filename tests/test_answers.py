"""Final-answer extraction, normalisation and equivalence (teachloop.environments.answers)."""

import sys
import threading

import pytest

from teachloop.environments import answers
from teachloop.environments.answers import (
    answer_parses,
    canonical_answer,
    detect_style,
    extract_answer,
    is_equivalent,
    last_boxed,
    normalize_answer,
    numbers_match,
    numeric_equal,
    parse_number,
    reference_answer,
)


# -- extraction ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "style", "expected"),
    [
        ("She pays 3*4=12 dollars.\n#### 12", "gsm8k", "12"),
        ("#### 5\nno wait\n#### 7", "gsm8k", "7"),  # the last marker wins
        ("so the total is #### $1,234.", "gsm8k", "$1,234."),
        ("First 2 then 3, so 5 in all.", "gsm8k", "5"),  # last number fallback
        ("It costs 1,250.50 dollars", "gsm8k", "1,250.50"),
        ("we get \\boxed{\\frac{1}{2}}", "math", "\\frac{1}{2}"),
        ("\\boxed{a_{1}+\\{x\\}} is it", "math", "a_{1}+\\{x\\}"),  # nested and escaped braces
        ("first \\boxed{1}, finally \\boxed{2}", "math", "2"),  # the last box wins
        ("\\boxed{3} then \\boxed{4", "math", "3"),  # an unbalanced box is skipped
        ("$\\boxed 7$", "math", "7"),
        ("\\fbox{x^2}", "math", "x^2"),
        ("The answer is $x^2 + 1$.", "math", "$x^2 + 1$"),
        ("\\frac{1}{2}", "math", "\\frac{1}{2}"),  # a bare short reply is the answer
        ("I think it is 5", "auto", "5"),  # prose is not taken whole; its last number is
        ("\\boxed{9} #### 8", "auto", "9"),
        ("#### 8\nthen \\boxed{9}", "gsm8k", "8"),  # gsm8k: the marker first
    ],
)
def test_extract_answer(text, style, expected):
    assert extract_answer(text, style) == expected


def test_extract_answer_none_and_bad_style():
    assert extract_answer("no idea at all, sorry about that", "gsm8k") is None
    assert extract_answer("", "math") is None
    assert last_boxed("\\boxed{") is None
    with pytest.raises(ValueError, match="unknown answer style"):
        extract_answer("1", "latex")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("solution", "expected"),
    [
        ("Natalia sold 48/2 = 24 clips.\n#### 72", "72"),
        ("So $x = \\boxed{\\dfrac{3}{4}}$.", "\\dfrac{3}{4}"),
        ("$\\frac{\\sqrt{3}}{2}$", "\\frac{\\sqrt{3}}{2}"),  # a one-line answer column
        ("a long solution\nwithout any final marker", None),
        ("", None),
    ],
)
def test_reference_answer(solution, expected):
    assert reference_answer(solution) == expected


# -- normalisation ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$42$", "42"),
        ("\\$18.00", "18"),
        ("1,234", "1234"),
        ("3.0", "3"),
        ("3.50", "3.5"),
        (".5", "0.5"),
        ("-0.0", "0"),
        ("42.", "42"),
        ("18 dollars", "18"),
        ("5\\text{ cm}", "5"),
        ("90^\\circ", "90"),
        ("10\\%", "10"),
        ("\\text{(C)}", "(C)"),
        ("x = 5", "5"),
        ("\\left( 1, 2 \\right)", "(1,2)"),
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("\\(x^2 + 1\\)", "x^2+1"),
        ("1, 2, 3", "1,2,3"),  # a list is not a number with separators
    ],
)
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


def test_canonical_answer_and_numbers():
    assert canonical_answer("$1,234$") == "1234"
    assert canonical_answer("$\\frac{1}{2}$") == "\\frac{1}{2}"
    assert canonical_answer("x^2 + 1") == "x^2 + 1"
    assert parse_number("\\frac{3}{4}") == 0.75
    assert parse_number("-\\frac12") == -0.5
    assert parse_number("3/4") == 0.75
    assert parse_number("1/0") is None
    assert parse_number("inf") is None and parse_number("nan") is None
    assert parse_number("x+1") is None


# -- equivalence -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reference", "candidate"),
    [
        ("0.5", "\\frac{1}{2}"),
        ("\\frac{1}{2}", "0.5"),
        ("1234", extract_answer("so #### 1,234", "gsm8k")),
        ("3", "3.0"),
        ("18", "$18.00"),
        ("\\dfrac{3}{4}", "\\frac34"),
        ("x^2+1", "1 + x^2"),  # symbolic: math-verify
        ("\\frac{\\sqrt{2}}{2}", "\\sqrt{2}/2"),
        ("\\text{Monday}", "Monday"),
        ("[0, 1]", "[0,1]"),
    ],
)
def test_equivalent(reference, candidate):
    assert is_equivalent(reference, candidate)


@pytest.mark.parametrize(
    ("reference", "candidate"),
    [
        ("3", "4"),
        ("\\frac{1}{2}", "0.25"),
        ("1234", "123"),
        ("x^2+1", "x^2-1"),
        ("(1,2)", "(2,1)"),
        ("\\pi", "3.14"),
        ("5", None),
        ("", ""),
        ("5", "   "),
    ],
)
def test_not_equivalent(reference, candidate):
    assert not is_equivalent(reference, candidate)


def test_numeric_tolerance():
    assert numeric_equal(1.0, 1.0 + 1e-9)
    assert not numeric_equal(1.0, 1.001)
    assert numeric_equal(1.0, 1.001, rel_tol=1e-2)
    assert numeric_equal(0.0, 1e-12)
    assert not numeric_equal(float("nan"), float("nan"))
    assert numbers_match("1,000", "1000.0000001")
    assert not numbers_match("1000", "1001")
    assert numbers_match("1000", "1001", rel_tol=0.01)
    assert not numbers_match("x", "x")  # not numbers at all
    assert is_equivalent("100", "100.5", rel_tol=0.01) and not is_equivalent("100", "100.5")


def test_without_math_verify_falls_back_to_strings_and_numbers(monkeypatch):
    monkeypatch.setitem(sys.modules, "math_verify", None)  # import math_verify -> ImportError
    assert answers.symbolic_equal("x", "x") is None
    assert not is_equivalent("x^2+1", "1+x^2")  # needs symbolic algebra
    assert is_equivalent("x^2 + 1", "x^2+1")  # normalised strings
    assert is_equivalent("\\frac{1}{2}", "0.5")  # numbers
    assert answer_parses("x^2+1", "math")


def test_math_verify_raising_falls_back(monkeypatch):
    import math_verify

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(math_verify, "parse", broken)
    assert answers.symbolic_equal("x^2+1", "1+x^2") is None
    assert not is_equivalent("x^2+1", "1+x^2")
    assert is_equivalent("\\dfrac{1}{2}", "\\frac{1}{2}")


def test_symbolic_check_works_off_the_main_thread():
    """math-verify's own timeout uses signal.alarm (main thread only); scoring in a worker
    thread must still give the same verdicts."""
    results: list[bool] = []
    worker = threading.Thread(target=lambda: results.extend([is_equivalent("x^2+1", "1+x^2"), is_equivalent("x", "y")]))
    worker.start()
    worker.join(60)
    assert results == [True, False]


def test_answer_parses():
    assert answer_parses("42", "gsm8k") and answer_parses("1,234", "gsm8k") and answer_parses("\\frac{1}{2}", "gsm8k")
    assert not answer_parses("forty-two", "gsm8k")
    assert answer_parses("\\frac{\\sqrt{3}}{2}", "math")
    assert not answer_parses("\\frac{1}{", "math")
    assert not answer_parses("", "math") and not answer_parses("$ $", "auto")


def test_detect_style():
    assert detect_style(["x = 2 + 3\n#### 5", "#### 7"]) == "gsm8k"
    assert detect_style(["so \\boxed{5}", "hence \\boxed{x}"]) == "math"
    assert detect_style(["5", "1,234"]) == "gsm8k"  # bare numeric answers
    assert detect_style(["x^2", "5"]) == "math"
