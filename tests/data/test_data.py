"""Shipped prompt data (counts, pairing quality, no unsafe leaks into benign sets) and the loaders."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from xsteer.categories import CATEGORIES
from xsteer.data import (
    Pair,
    data_record,
    load_benign,
    load_pairs,
    pair_texts,
    pairs_by_category,
    split_pairs,
    split_texts,
)
from xsteer.errors import EmptyDataError, UnknownCategoryError, XSteerError

DATA_DIR = Path(__file__).resolve().parents[2] / "src" / "xsteer" / "data"


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def _jaccard(a: str, b: str) -> float:
    ta, tb = _tokens(a), _tokens(b)
    return len(ta & tb) / len(ta | tb)


# ---------------------------------------------------------------- shipped pairs


@pytest.fixture(scope="module")
def pairs() -> list[Pair]:
    return load_pairs()


def test_pairs_cover_every_category_with_enough_pairs(pairs: list[Pair]) -> None:
    counts = Counter(p.category for p in pairs)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 50, counts


def test_pairs_differ_only_in_the_concept(pairs: list[Pair]) -> None:
    # Same scene and style on both sides: most words shared, but never the same text.
    bad = [(p.unsafe, p.safe) for p in pairs if _jaccard(p.unsafe, p.safe) < 0.3]
    assert not bad, bad[:5]
    assert all(_key(p.unsafe) != _key(p.safe) for p in pairs)
    # and comparable lengths, so length is not what separates them
    ratios = [len(p.safe.split()) / len(p.unsafe.split()) for p in pairs]
    assert min(ratios) >= 0.5 and max(ratios) <= 2.0


def test_pairs_have_no_duplicates_and_varied_lengths(pairs: list[Pair]) -> None:
    unsafe = [_key(p.unsafe) for p in pairs]
    safe = [_key(p.safe) for p in pairs]
    assert len(set(unsafe)) == len(unsafe)
    assert len(set(safe)) == len(safe)
    # no unsafe prompt doubles as a safe one anywhere in the set
    assert not set(unsafe) & set(safe)
    lengths = [len(p.unsafe.split()) for p in pairs]
    assert min(lengths) <= 4 and max(lengths) >= 15


def test_sexual_pairs_are_explicitly_about_adults(pairs: list[Pair]) -> None:
    adult = re.compile(r"\badults?\b|\bin (his|her) (twenties|thirties|forties|fifties)\b")
    minors = re.compile(r"\b(child|children|kid|kids|teen|teens|teenage|teenager|girl|girls|boy|boys|"
                        r"schoolgirl|minor|underage|young)\b")
    for p in pairs:
        if p.category == "sexual":
            assert adult.search(p.unsafe), p.unsafe
            assert not minors.search(p.unsafe), p.unsafe


def test_shipped_pairs_file_is_canonical_jsonl() -> None:
    for line in (DATA_DIR / "pairs.jsonl").read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        assert set(obj) == {"category", "unsafe", "safe"}
        assert obj["category"] in CATEGORIES


def test_category_filter_accepts_aliases_and_rejects_unknown() -> None:
    illegal = load_pairs(categories=["Illegal Activity"])
    assert illegal and {p.category for p in illegal} == {"illegal"}
    with pytest.raises(UnknownCategoryError):
        load_pairs(categories=["weather"])


# ---------------------------------------------------------------- splits


def test_split_pairs_is_stratified_disjoint_and_deterministic(pairs: list[Pair]) -> None:
    train, test = split_pairs(pairs, test_fraction=0.5, seed=3)
    assert len(train) + len(test) == len(pairs)
    assert not set(train) & set(test)
    assert {p.category for p in train} == {p.category for p in test} == set(CATEGORIES)
    for cat, group in pairs_by_category(pairs).items():
        n_test = sum(p.category == cat for p in test)
        assert abs(n_test - len(group) / 2) <= 1
    assert split_pairs(pairs, 0.5, seed=3) == (train, test)
    assert split_pairs(pairs, 0.5, seed=4) != (train, test)


def test_split_pairs_keeps_small_categories_in_both_halves() -> None:
    tiny = [Pair("hate", f"u{i}", f"s{i}") for i in range(2)] + [Pair("sexual", "u", "s")]
    train, test = split_pairs(tiny, test_fraction=0.9, seed=0)
    assert sum(p.category == "hate" for p in train) == 1
    assert sum(p.category == "hate" for p in test) == 1
    assert [p.category for p in train if p.category == "sexual"] == ["sexual"]


def test_split_texts_fraction_and_determinism() -> None:
    texts = [f"prompt {i}" for i in range(100)]
    train, test = split_texts(texts, 0.2, seed=1)
    assert len(test) == 20 and len(train) == 80
    assert sorted(train + test) == sorted(texts)
    assert split_texts(texts, 0.2, seed=1) == (train, test)
    assert split_texts(texts, 0.2, seed=2)[1] != test
    with pytest.raises(XSteerError):
        split_texts(texts, 1.0)


def test_pair_texts_and_data_record_are_row_aligned(pairs: list[Pair]) -> None:
    unsafe, safe = pair_texts(pairs[:5])
    assert unsafe == [p.unsafe for p in pairs[:5]] and safe == [p.safe for p in pairs[:5]]
    rec = data_record("pairs", unsafe, "source", True)
    assert rec.n == 5 and rec.unsafe and rec.side == "source"
    assert rec.sha256 != data_record("pairs", safe, "source", True).sha256


# ---------------------------------------------------------------- user files and errors


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _line(cat: str = "violence", unsafe: str = "a man hitting a dog", safe: str = "a man petting a dog") -> str:
    return json.dumps({"category": cat, "unsafe": unsafe, "safe": safe})


def test_user_pairs_file_loads_and_normalizes_categories(tmp_path: Path) -> None:
    p = _write(tmp_path, "p.jsonl", _line("Self Harm") + "\n\n" + _line(unsafe="x y", safe="x z") + "\n")
    got = load_pairs(p)
    assert got == [Pair("self-harm", "a man hitting a dog", "a man petting a dog"),
                   Pair("violence", "x y", "x z")]
    assert load_pairs(p, categories=["violence"]) == got[1:]


@pytest.mark.parametrize(
    ("bad_line", "error", "needle"),
    [
        ("{not json", XSteerError, "invalid JSON"),
        (json.dumps({"category": "hate", "unsafe": "a"}), XSteerError, "safe"),
        (_line(unsafe="  "), XSteerError, "unsafe"),
        (_line(unsafe="same text", safe="Same text"), XSteerError, "same"),
        (_line(cat="weather"), UnknownCategoryError, "weather"),
        ("[1, 2]", XSteerError, "object"),
    ],
)
def test_bad_pairs_lines_name_file_and_line(tmp_path: Path, bad_line: str, error: type, needle: str) -> None:
    p = _write(tmp_path, "bad.jsonl", _line() + "\n" + _line(unsafe="b", safe="c") + "\n" + bad_line + "\n")
    with pytest.raises(error) as info:
        load_pairs(p)
    msg = str(info.value)
    assert "bad.jsonl" in msg and "line 3" in msg and needle in msg


def test_pairs_empty_or_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EmptyDataError):
        load_pairs(_write(tmp_path, "empty.jsonl", "\n\n"))
    with pytest.raises(EmptyDataError):
        load_pairs(_write(tmp_path, "one.jsonl", _line() + "\n"), categories=["hate"])
    with pytest.raises(XSteerError, match="not found"):
        load_pairs(tmp_path / "missing.jsonl")


def test_benign_txt_skips_comments_and_dedupes(tmp_path: Path) -> None:
    p = _write(tmp_path, "b.txt", "# header\na cat on a mat\n\nA  cat on a MAT \na dog\n  # indented comment\n")
    assert load_benign(p) == ["a cat on a mat", "a dog"]


def test_benign_csv_picks_the_text_column(tmp_path: Path) -> None:
    named = _write(tmp_path, "c.csv", 'id,Caption\n1,"a red bus, parked"\n2,a dog\n3,a dog\n')
    assert load_benign(named) == ["a red bus, parked", "a dog"]
    first = _write(tmp_path, "d.csv", "sentence,score\na tree,1\na lake,2\n")
    assert load_benign(first) == ["a tree", "a lake"]


def test_benign_jsonl_keys_and_errors(tmp_path: Path) -> None:
    ok = _write(tmp_path, "b.jsonl", '{"prompt": "a boat"}\n{"text": "a kite"}\n')
    assert load_benign(ok) == ["a boat", "a kite"]
    bom = tmp_path / "bom.jsonl"  # spreadsheet/editor exports often start with a BOM
    bom.write_bytes('{"prompt": "a kite"}\n'.encode("utf-8-sig"))
    assert load_benign(bom) == ["a kite"]
    bad = _write(tmp_path, "bad.jsonl", '{"prompt": "a boat"}\n{"caption": "a kite"}\n')
    with pytest.raises(XSteerError, match=r"bad\.jsonl, line 2"):
        load_benign(bad)


def test_benign_empty_missing_and_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(EmptyDataError):
        load_benign(_write(tmp_path, "e.txt", "# only a comment\n\n"))
    with pytest.raises(EmptyDataError):
        load_benign(_write(tmp_path, "e.csv", "prompt\n"))
    with pytest.raises(XSteerError, match="not found"):
        load_benign(tmp_path / "nope.txt")
    with pytest.raises(XSteerError, match="unknown benign kind"):
        load_benign(kind="weird")


# ---------------------------------------------------------------- shipped benign sets

# Words that only appear in clearly unsafe prompts. Near-miss words (knife, blood donation, murder
# mystery, skull, rifle, bikini, surgeon) are deliberately absent: the near-miss set needs them.
BLOCKLIST = (
    "nude", "nudes", "naked", "nudity", "porn", "porno", "pornographic", "nsfw", "erotic", "erotica",
    "topless", "orgy", "genitals", "stripper", "striptease", "hentai", "rape", "raped", "gore", "gory",
    "corpse", "corpses", "decapitated", "behead", "beheaded", "beheading", "dismembered", "mutilated",
    "disemboweled", "entrails", "cannibal", "maggot", "maggots", "suicide", "suicidal", "overdose",
    "overdosing", "self-harm", "noose", "cocaine", "heroin", "meth", "methamphetamine", "ecstasy",
    "junkie", "swastika", "swastikas", "nazi", "neo-nazi", "kkk", "klan", "klansmen", "lynching",
    "torture", "torturing", "massacre", "slaughtering", "bloodbath", "stabbing", "strangling",
)
_BLOCK_RE = re.compile(r"(?<![\w-])(" + "|".join(re.escape(w) for w in BLOCKLIST) + r")(?![\w-])")


@pytest.fixture(scope="module")
def benign_sets() -> dict[str, list[str]]:
    return {k: load_benign(kind=k) for k in ("generic", "nearmiss", "captions")}


def test_benign_counts(benign_sets: dict[str, list[str]]) -> None:
    assert len(benign_sets["generic"]) >= 2000
    assert len(benign_sets["nearmiss"]) >= 400
    assert len(benign_sets["captions"]) >= 200
    anchors = load_benign(kind="anchors")
    assert anchors == benign_sets["generic"] + benign_sets["nearmiss"]
    assert len(load_benign(kind="all")) == len(anchors) + len(benign_sets["captions"])


def test_benign_files_have_no_duplicates_within_or_between() -> None:
    seen: dict[str, str] = {}
    for name in ("benign.txt", "benign_nearmiss.txt", "heldout1_captions.txt"):
        for line in (DATA_DIR / name).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            k = _key(line)
            assert k not in seen, f"{line!r} in {name} repeats a line of {seen[k]}"
            seen[k] = name


def test_heldout_captions_are_not_near_copies_of_anchors(benign_sets: dict[str, list[str]]) -> None:
    anchors = [_tokens(t) for t in benign_sets["generic"] + benign_sets["nearmiss"]]
    for cap in benign_sets["captions"]:
        tc = _tokens(cap)
        # Jaccard >= 0.75 needs sizes within a factor 0.75 of each other: skip the rest (speed).
        close = [ta for ta in anchors if 0.75 * len(ta) <= len(tc) <= len(ta) / 0.75]
        worst = max((len(tc & ta) / len(tc | ta) for ta in close), default=0.0)
        assert worst < 0.75, cap


def test_no_unsafe_text_leaks_into_benign_sets(
    benign_sets: dict[str, list[str]], pairs: list[Pair]
) -> None:
    benign = {_key(t) for texts in benign_sets.values() for t in texts}
    leaked = [p.unsafe for p in pairs if _key(p.unsafe) in benign]
    assert not leaked
    for kind, texts in benign_sets.items():
        hits = [t for t in texts if _BLOCK_RE.search(t.lower())]
        assert not hits, (kind, hits[:5])


def test_blocklist_is_meaningful(pairs: list[Pair]) -> None:
    # It must flag a real share of the unsafe prompts (so the leak check has teeth) and no safe one.
    flagged = sum(bool(_BLOCK_RE.search(p.unsafe.lower())) for p in pairs)
    assert flagged >= 0.2 * len(pairs)
    assert not [p.safe for p in pairs if _BLOCK_RE.search(p.safe.lower())]


def test_composed_prompts_are_a_minority() -> None:
    # FINDINGS.md: templated prompts generalise badly, so most of benign.txt must be hand-written.
    text = (DATA_DIR / "benign.txt").read_text(encoding="utf-8")
    head, sep, composed = text.partition("# Composed")
    assert sep, "benign.txt lost its '# Composed' section marker"
    n_hand = len(_parse_lines(head))
    n_composed = len(_parse_lines(composed.split("\n", 1)[1]))
    assert n_hand > n_composed > 0


def _parse_lines(text: str) -> list[str]:
    return [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]
