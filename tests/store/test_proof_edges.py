"""verify_proof on bundles that are JSON but not an object: a report, never
an exception."""

from __future__ import annotations

import pytest

from store import verify_proof


@pytest.mark.parametrize("bundle", ["[1, 2]", '"text"', "42", "null", b"[]", [1, 2], 42, None])
def test_a_bundle_that_is_not_an_object_is_refused_by_the_report(bundle: object) -> None:
    report = verify_proof(bundle)
    assert not report.ok
    assert report.reason == "not a proof bundle: not a JSON object"
    assert report.position is None and report.signed is None
