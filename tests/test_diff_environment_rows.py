"""``diff``'s environment rows (issue 21, item 9): a key absent or null on both sides is no
difference; ``torch`` null in A (never imported) against torch's details in B differs by those
details only, not by a ``torch | - | -`` row."""

from __future__ import annotations

from repro_check.checks.diff import environment_rows


def test_a_key_absent_or_null_on_both_sides_is_no_row() -> None:
    a = {"python": "3.11.7", "torch": None, "packages": {"numpy": "2.0", "torch": None}}
    b = {"python": "3.11.7", "packages": {"numpy": "2.0"}}
    rows = environment_rows(a, b)
    assert [(r.key, r.a, r.b, r.differs) for r in rows] == [
        ("packages.numpy", "2.0", "2.0", False),
        ("python", "3.11.7", "3.11.7", False),
    ]


def test_torch_imported_on_one_side_differs_by_its_details_only() -> None:
    a = {"torch": None, "packages": {"torch": "2.3.0"}}
    b = {"torch": {"version": "2.3.0", "threads": 1}, "packages": {"torch": "2.3.0"}}
    differing = [(r.key, r.a, r.b) for r in environment_rows(a, b) if r.differs]
    assert differing == [("torch.threads", None, "1"), ("torch.version", None, "2.3.0")]


def test_a_package_on_one_side_only_still_differs() -> None:
    rows = environment_rows({"packages": {"scipy": "1.13"}}, {"packages": {}})
    assert [(r.key, r.a, r.b, r.differs) for r in rows] == [("packages.scipy", "1.13", None, True)]
