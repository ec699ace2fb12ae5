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
        # no "last number in the text" fallback: a number merely appearing is no answer
        ("First 2 then 3, so 5 in all.", "gsm8k", None),
        ("It costs 1,250.50 dollars", "gsm8k", None),
        ("1,250.50 dollars", "gsm8k", "1,250.50 dollars"),  # a bare reply that is the number alone
        ("aaaaaaaaaa7aaaaaaa", "gsm8k", None),  # not a number
        ("aaaaaaaaaa7aaaaaaa", "math", None),  # garbage is not a bare answer
        ("we get \\boxed{\\frac{1}{2}}", "math", "\\frac{1}{2}"),
        ("\\boxed{a_{1}+\\{x\\}} is it", "math", "a_{1}+\\{x\\}"),  # nested and escaped braces
        ("first \\boxed{1}, finally \\boxed{2}", "math", "2"),  # the last box wins
        ("\\boxed{3} then \\boxed{4", "math", None),  # the last box is truncated: no answer at all
        ("#### 3\nso\n#### ", "gsm8k", None),  # the last marker is empty: truncated
        ("$\\boxed 7$", "math", "7"),
        ("\\fbox{x^2}", "math", "x^2"),
        ("The answer is $x^2 + 1$.", "math", "$x^2 + 1$"),
        ("\\frac{1}{2}", "math", "\\frac{1}{2}"),  # a bare short reply is the answer
        ("I think it is 5", "auto", None),  # prose is not taken whole, and has no marker
        ("The answer is 5 because 2 + 3 = 5.", "auto", "5"),  # the phrase's answer ends at its clause
        ("**Answer:** 42", "gsm8k", "42"),
        # the last final answer in the text counts, whatever its marker
        ("\\boxed{9} #### 8", "auto", "8"),
        ("#### 8\nthen \\boxed{9}", "gsm8k", "9"),
        ("#### 8\nso the answer is 9", "gsm8k", "8"),  # a phrase does not override a marker
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


# -- references: free text -> acceptable answers -----------------------------------------------
@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("\\frac{n(n+1)}{2} (i.e., the sum of the first n integers)", ["\\frac{n(n+1)}{2}"]),
        ("n^2, i.e. the square of n", ["n^2"]),
        ("$\\frac{1}{2}$, i.e. $0.5$", ["\\frac{1}{2}", "0.5"]),  # an i.e. that is an answer counts
        ("$2$, or equivalently $\\frac{4}{2}$", ["2", "\\frac{4}{2}"]),
        ("$\\frac{\\pi}{2}$ (or equivalently $90^\\circ$)", ["\\frac{\\pi}{2}", "90^\\circ"]),
        ("3 (e.g. 1+2)", ["3"]),  # an example is not the answer
        ("(1, 2)", ["(1, 2)"]),
        ("1, 2, 3", ["1, 2, 3"]),
        ("Natalia sold 24 clips.\n#### 72", ["72"]),
        ("", []),
    ],
)
def test_reference_answers(reference, expected):
    assert answers.reference_answers(reference) == expected


def test_any_stated_alternative_counts():
    assert is_equivalent("$\\frac{\\pi}{2}$, or equivalently $90^\\circ$", "90")
    assert is_equivalent("$\\frac{\\pi}{2}$, or equivalently $90^\\circ$", "\\frac{\\pi}{2}")
    assert not is_equivalent("$\\frac{\\pi}{2}$, or equivalently $90^\\circ$", "45")
    assert not is_equivalent("12, i.e. a dozen", "a")


# -- the guard in front of math-verify -----------------------------------------------------------
@pytest.mark.parametrize(
    ("answer", "well_formed"),
    [
        ("x^2+1", True),
        ("\\frac{n(n+1)}{2}", True),
        ("(-\\infty, 2]", True),
        ("6 \\cdot 10^3", True),
        ("\\sin x + 2xy", True),
        ("1,234", True),
        ("aaaaaaaaaa2aaaa", False),  # math-verify reads this as 2a^14
        ("asdf4", False),
        ("a a a a 4", False),
        ("x2", False),
        ("\\frac{1}{", False),
        ("x" * 50 + "+" + "y" * 50, False),
        ("1 + " * 40 + "1", False),  # too long for a final answer
    ],
)
def test_is_well_formed(answer, well_formed):
    assert answers.is_well_formed(answer) is well_formed


def test_math_verify_is_never_asked_about_garbage(monkeypatch):
    import math_verify

    asked = []
    monkeypatch.setattr(math_verify, "parse", lambda *a, **k: asked.append(a) or [])
    assert answers.symbolic_equal("2a^{14}", "aaaaaaaaaa2aaaa") is None
    assert not is_equivalent("2a^{14}", "aaaaaaaaaa2aaaa")
    assert asked == []


# -- whole responses -----------------------------------------------------------------------------
def test_final_answer_matches_needs_a_delimited_final_answer():
    match = answers.final_answer_matches
    assert match("so 5 apples in all\n#### 5", "5", "gsm8k")
    assert not match("so 5 apples in all", "5", "gsm8k")  # no marker, not a bare reply
    assert not match("#### 2+2", "4", "gsm8k")  # gsm8k compares numbers, not expressions
    assert match("\\boxed{2+2}", "4", "math")  # math style may simplify symbolically
    assert not match("\\boxed{4x}", "4", "math") and not match("\\boxed{4", "4", "math")
    assert not match("\\boxed{4}\nno wait\n\\boxed{5}", "4", "math")  # the last answer counts
    assert answers.final_number_matches("#### 1/2", "0.5") and not answers.final_number_matches("#### x/2", "0.5")
