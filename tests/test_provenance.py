import pytest

from xsteer.errors import UnsafeDataError
from xsteer.provenance import DataRecord, Provenance, require_benign


def test_require_benign_refuses_target_unsafe_only():
    src_unsafe = DataRecord.from_texts("pairs", ["u"], side="source", unsafe=True)
    tgt_benign = DataRecord.from_texts("benign", ["b"], side="target", unsafe=False)
    require_benign("alignment", src_unsafe, tgt_benign)  # fine: unsafe only on the source
    tgt_unsafe = DataRecord.from_texts("pairs", ["u"], side="target", unsafe=True)
    with pytest.raises(UnsafeDataError, match=r"'pairs'.*unsafe on the target side"):
        require_benign("alignment", Provenance([tgt_benign, tgt_unsafe]))


def test_provenance_round_trip_and_merge():
    a = DataRecord.from_texts("a", ["x"], side="source", unsafe=True)
    b = DataRecord.from_texts("b", ["y"], side="target", unsafe=False)
    p = Provenance([a]).merged(Provenance([a, b]))
    assert p.data == [a, b]
    assert Provenance.from_list(p.to_list()).data == [a, b]
    assert p.summary() == {"source": True, "target": False}
