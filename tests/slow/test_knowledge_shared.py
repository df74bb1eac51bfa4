"""The embedded knowledge agrees with the shared knowledge tables (EMFACS CSV, py-feat AU table)."""

from __future__ import annotations

import csv

import pytest

from affectllm.knowledge.emfacs import (
    _RELATED, EMFACS_CODES, EMFACS_VARIANTS, FACS_AU_NUMBERS, _combo, load_au_table)

pytestmark = pytest.mark.slow


def test_emfacs_prototypes_match_shared_csv(shared_data):
    with (shared_data / "knowledge" / "emfacs_prototypes.csv").open(newline="") as f:
        rows = {r["emotion"].strip(): r for r in csv.DictReader(f)}
    assert set(rows) == set(EMFACS_CODES)
    for emotion, row in rows.items():
        assert _combo(row["aus"]) == _combo(EMFACS_CODES[emotion]), emotion
    # the alternative named in the notes column is embedded as a variant
    assert "9+15+17" in rows["disgust"]["notes"]
    assert EMFACS_VARIANTS["disgust"] == (_combo("9+15+17"),)


def test_facs_numbers_and_related_emotions_match_pyfeat_table(shared_data):
    table = load_au_table(shared_data / "knowledge" / "facs_au_table_pyfeat_MIT.csv")
    assert len(table) == 59
    numbers = {int(k[2:]) for k in table}
    # py-feat lists AU3 (Baby FACS only) and omits AU36 (tongue bulge); otherwise the same codes.
    assert numbers - FACS_AU_NUMBERS == {3}
    assert FACS_AU_NUMBERS - numbers == {36}
    for au, row in table.items():
        related = tuple(e.strip() for e in row["related"].split(",") if e.strip() and e.strip() != "none")
        assert set(_RELATED.get(au, ())) == set(related), au
    assert load_au_table()["AU12"]["muscles"] == "Zygomaticus Major"  # default path finds the shared file
