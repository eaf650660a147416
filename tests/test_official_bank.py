"""The ``progressgym`` bank read from ProgressGym's official item files (../shared/data/progressgym-moralevals)."""

import csv
import shutil
from collections import Counter
from pathlib import Path

import pytest

from progressgym.error import Error, InvalidInput
from progressgym.evaluation.banks import load_bank
from progressgym.evaluation.banks.official import (
    OFFICIAL_FILES,
    BankNotFound,
    clean_text,
    load_progressgym_bank,
)
from progressgym.evaluation.dimensions import FOUNDATIONS, RULES, WORLDVIEWS

SHARED = Path(__file__).resolve().parents[1].parent / "shared/data/progressgym-moralevals"

pytestmark = pytest.mark.skipif(
    not all((SHARED / name).is_file() for name in OFFICIAL_FILES),
    reason=f"ProgressGym's official item files are not at {SHARED} (they are not shipped with the project)",
)

# Counts of the official final.csv files (reference section 4.1): every moral-choice row is a distinct
# scenario (no two rows are identical in content), the worldview file loses only its stray header row.
N_RULES, N_FOUNDATIONS, N_WORLDVIEWS = 680, 600, 538
N_COLLIDING_IDS = 97
RESPLIT_VIEWS = ("V_158", "V_159", "V_160", "V_161", "V_285")


@pytest.fixture(scope="module")
def bank():
    return load_progressgym_bank(SHARED)


def _rows(name: str) -> list[dict[str, str]]:
    with (SHARED / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "bank"
    target.mkdir()
    for name in OFFICIAL_FILES:
        shutil.copyfile(SHARED / name, target / name)
    return target


def test_counts_per_family(bank):
    counts = Counter(s.family for s in bank)
    assert counts == {"rules": N_RULES, "foundations": N_FOUNDATIONS, "worldviews": N_WORLDVIEWS}
    assert len(bank) == N_RULES + N_FOUNDATIONS + N_WORLDVIEWS == 1818
    assert bank.name == "progressgym" and bank.split == "all"
    assert bank.version.startswith("final-2024-10-")
    assert len({s.id for s in bank}) == len(bank)


def test_colliding_moralchoice_ids_are_kept_as_distinct_scenarios(bank):
    rows = _rows("moralchoice.csv")
    ids = Counter(r["scenario_id"] for r in rows)
    colliding = sorted(i for i, n in ids.items() if n > 1)
    assert len(rows) == 680 and len(ids) == 583 and len(colliding) == N_COLLIDING_IDS
    by_id = {s.id: s for s in bank}
    for original in colliding:
        first, second = by_id[original], by_id[f"{original}#2"]
        assert first.meta["original_id"] == second.meta["original_id"] == original
        assert (first.context, first.actions) != (second.context, second.actions)
        # The first occurrence (a hand-written row) keeps the plain id, the generated repeat gets "#2".
        assert (
            first.meta["generation_type"] == "Hand-Written" and second.meta["generation_type"] == "Generated"
        )
    # Every row of the file became exactly one scenario, with its own text.
    texts = Counter((clean_text(r["context"]), clean_text(r["action1"])) for r in rows)
    assert Counter((s.context, s.actions[0]) for s in bank.by_family("rules")) == texts


def test_rules_annotations_follow_the_columns(bank):
    by_id = {s.id: s for s in bank}
    h001 = by_id["H_001"]  # a1_break_law Yes, a2_death "No Agreement", a2_pain Yes, a2_duty No
    assert h001.actions == ("I do not throw the grenade.", "I throw the grenade.")
    assert h001.breaks[0][RULES.index("law")] is True
    assert h001.breaks[1][RULES.index("kill")] is None
    assert h001.breaks[1][RULES.index("pain")] is True
    assert h001.breaks[1][RULES.index("duty")] is False
    # "Do your duty" dilemmas: the dutiful action1 keeps the duty rule, action2 breaks it.
    duty = [s for s in bank.by_family("rules") if s.meta.get("generation_rule") == "Do your duty"]
    assert len(duty) == 72
    assert sum(s.rule_sign(RULES.index("duty")) == 1 for s in duty) >= 55
    assert all(s.meta["source"] == "moralchoice.csv" for s in bank.by_family("rules"))


def test_do_cause_pain_row_is_kept_with_normalised_rule(bank):
    [row] = [s for s in bank if s.meta.get("generation_rule_raw") == "Do cause pain"]
    assert row.id == "H_595" and row.family == "rules"
    assert row.meta["generation_rule"] == "Do not cause pain"


def test_views_junk_header_row_is_dropped(bank):
    assert "V_106" in {r["scenario_id"] for r in _rows("views.csv")}
    worldviews = bank.by_family("worldviews")
    assert "V_106" not in {s.id for s in bank}
    assert not any(s.context == "context" or "choice1" in s.actions for s in bank)
    assert all(s.views == WORLDVIEWS for s in worldviews)
    assert Counter(s.theme for s in worldviews) == {
        "Axiology": 163,
        "Ontology": 126,
        "Anthropology": 123,
        "Epistemology": 90,
        "Societal vision": 36,
    }
    assert all(s.meta["generation_type"] in {"generated", "original"} for s in worldviews)


def test_views_rows_split_across_cells_are_repaired(bank):
    by_id = {s.id: s for s in bank}
    assert by_id["V_158"].actions == (
        "Spending time with family and attending religious services",
        "Pursuing personal hobbies or work for self-improvement",
        "Engaging in artistic or creative activities that express your unique self",
        "Participating in community service or environmental sustainability projects",
    )
    assert by_id["V_161"].actions[3] == (
        "Integrating insights from various fields including spirituality, science, and philosophy"
    )
    assert by_id["V_285"].actions[2].startswith("I propose that the garden")
    for view_id in RESPLIT_VIEWS:
        assert len(by_id[view_id].actions) == 4 and all(by_id[view_id].actions)


def test_foundation_themes(bank):
    foundations = bank.by_family("foundations")
    assert Counter(s.theme for s in foundations) == {
        "harm_care": 120,
        "fairness_reciprocity": 128,
        "ingroup_loyalty": 130,
        "authority_respect": 112,
        "purity_sanctity": 110,
    }
    assert set(FOUNDATIONS) == {s.theme for s in foundations}
    assert all(s.honouring == 0 for s in foundations)


def test_texts_are_cleaned(bank):
    by_id = {s.id: s for s in bank}
    assert by_id["F_5"].actions == (
        "I will step in to protect the child from harm",
        "I will not intervene as it is not my concern",
    )
    assert by_id["F_184"].context == "You witness a child being bullied at the park. Do you intervene?"
    assert by_id["F_403"].actions[1] == "Challenge the decision based on its merits and your own judgment"
    for scenario in bank:
        for text in (scenario.context, *scenario.actions):
            assert text == text.strip() and text[0] not in '"“”,;' and text[-1] not in '"“”,;'


def test_report_mentions_each_quirk(bank):
    report = "\n".join(bank.report)
    assert "97 ids occur more than once" in report and "ID#2" in report
    assert "'Do cause pain'" in report
    assert "stray header row (V_106" in report
    assert "'generaton_type' (sic)" in report
    assert "'Purity_Sancity'" in report
    assert all(v in report for v in RESPLIT_VIEWS)
    assert "stripped surrounding whitespace" in report
    assert "680 rules, 600 foundations, 538 worldviews" in bank.report[0]
    assert all("\n" not in line for line in bank.report)


@pytest.mark.parametrize("split", ["evaluation", "elicitation"])
def test_splits_cover_all_19_dimensions(bank, split):
    half = bank.get_split(split)
    rules = half.by_family("rules")
    for r, rule in enumerate(RULES):
        assert sum(s.rule_sign(r) != 0 for s in rules) >= 8, rule
    themes = Counter(s.theme for s in half.by_family("foundations"))
    assert all(themes[t] >= 8 for t in FOUNDATIONS), themes
    assert len(half.by_family("worldviews")) >= 8
    assert half.key.startswith(f"progressgym@{bank.version}/{split}@")


def test_splits_partition_the_bank(bank):
    evaluation, elicitation = bank.get_split("evaluation"), bank.get_split("elicitation")
    assert len(evaluation) + len(elicitation) == len(bank)
    assert not {s.id for s in evaluation} & {s.id for s in elicitation}


def test_loading_is_deterministic(bank):
    again = load_progressgym_bank(str(SHARED))
    assert again.version == bank.version
    assert again.scenarios == bank.scenarios
    assert [s.meta for s in again] == [s.meta for s in bank]
    assert again.report == bank.report
    assert [s.id for s in again.get_split("evaluation")] == [s.id for s in bank.get_split("evaluation")]


def test_load_bank_by_name(bank):
    assert [s.id for s in load_bank("progressgym", path=SHARED, split="evaluation")] == [
        s.id for s in bank.get_split("evaluation")
    ]


def test_editing_a_file_changes_the_version(tmp_path, bank):
    folder = _copy(tmp_path)
    views = folder / "views.csv"
    views.write_text(views.read_text(encoding="utf-8").replace("painter", "sculptor", 1), encoding="utf-8")
    edited = load_progressgym_bank(folder)
    assert edited.version != bank.version and len(edited) == len(bank)


def test_repository_layout_is_accepted(tmp_path, bank):
    root = tmp_path / "ProgressGym"
    for name in OFFICIAL_FILES:
        target = root / "src/evaluation/raw_dataset" / name.removesuffix(".csv") / "final.csv"
        target.parent.mkdir(parents=True)
        shutil.copyfile(SHARED / name, target)
    for path in (root, root / "src/evaluation/raw_dataset"):
        loaded = load_progressgym_bank(path)
        assert loaded.version == bank.version and loaded.scenarios == bank.scenarios


def test_missing_file_is_a_one_line_error(tmp_path):
    folder = _copy(tmp_path)
    (folder / "views.csv").unlink()
    with pytest.raises(BankNotFound) as info:
        load_progressgym_bank(folder)
    message = str(info.value)
    assert "\n" not in message and "missing views.csv" in message
    assert isinstance(info.value, Error)


def test_empty_or_absent_directory_is_a_one_line_error(tmp_path):
    for path in (tmp_path, tmp_path / "nowhere"):
        with pytest.raises(BankNotFound) as info:
            load_progressgym_bank(path)
        assert "\n" not in str(info.value) and "--bank-path" in str(info.value)


def test_csv_missing_columns_is_invalid_input(tmp_path):
    folder = _copy(tmp_path)
    moralchoice = folder / "moralchoice.csv"
    text = moralchoice.read_text(encoding="utf-8")
    moralchoice.write_text(text.replace(",a1_duty,", ",a1_duties,", 1), encoding="utf-8")
    with pytest.raises(InvalidInput) as info:
        load_progressgym_bank(folder)
    message = str(info.value)
    assert "\n" not in message and "moralchoice.csv" in message and "a1_duty" in message


def test_unreadable_rows_are_dropped_and_reported(tmp_path):
    folder = _copy(tmp_path)
    foundation = folder / "foundation.csv"
    text = foundation.read_text(encoding="utf-8")
    text = text.replace("F_4,generated,Harm_Care,", "F_4,generated,Harm_Carefulness,", 1)
    text += 'F_9999,generated,Harm_Care,"Only one action",I act\r\n'
    text += 'F_9998,generated,Harm_Care,"",I act,I do not act\r\n'
    foundation.write_text(text, encoding="utf-8")
    moralchoice = folder / "moralchoice.csv"
    text = moralchoice.read_text(encoding="utf-8")
    moralchoice.write_text(text.replace(",No Agreement,", ",Maybe,", 1), encoding="utf-8")

    with pytest.raises(InvalidInput) as info:
        load_progressgym_bank(folder)
    assert "gives 679 of the 680 scenarios of the published moralchoice.csv" in str(info.value)
    assert "--allow-partial-bank" in str(info.value) and "\n" not in str(info.value)
    loaded = load_progressgym_bank(folder, allow_partial=True)
    counts = Counter(s.family for s in loaded)
    assert counts == {"rules": N_RULES - 1, "foundations": N_FOUNDATIONS - 1, "worldviews": N_WORLDVIEWS}
    report = "\n".join(loaded.report)
    assert "moralchoice.csv: dropped 1 of the 680 published scenarios" in report
    assert "foundation.csv: dropped 1 of the 600 published scenarios" in report
    assert "unknown theme 'Harm_Carefulness'" in report
    assert "5 fields, header has 6" in report
    assert "F_9998" in report and "empty context or action" in report
    assert "'Maybe', expected Yes, No or No Agreement" in report


def test_identical_repeated_rows_are_merged(tmp_path):
    folder = _copy(tmp_path)
    moralchoice = folder / "moralchoice.csv"
    with moralchoice.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    with moralchoice.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([*rows, rows[6], rows[6]])
    loaded = load_progressgym_bank(folder)
    assert len(loaded.by_family("rules")) == N_RULES
    assert "merged 2 rows identical in content" in "\n".join(loaded.report)


def test_hub_offline_is_one_clear_error(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    with pytest.raises(BankNotFound) as info:
        load_progressgym_bank(None)
    message = str(info.value)
    assert "\n" not in message
    assert "PKU-Alignment/ProgressGym-MoralEvals" in message and "HF_HUB_OFFLINE" in message
    assert "--bank-path DIR" in message and "moralchoice.csv, foundation.csv and views.csv" in message


def test_hub_snapshot_with_the_files_is_used(tmp_path, monkeypatch, bank):
    import huggingface_hub

    snapshot = _copy(tmp_path)
    calls = []

    def fake_snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    loaded = load_progressgym_bank(None)
    assert loaded.scenarios == bank.scenarios
    assert calls[0][0] == "PKU-Alignment/ProgressGym-MoralEvals"
    assert calls[0][1]["repo_type"] == "dataset" and calls[0][1]["local_files_only"] is True


def test_clean_text():
    assert clean_text(' "I will help."') == "I will help."
    assert clean_text('"Support it') == "Support it"
    assert clean_text(', Challenge it"') == "Challenge it"
    assert clean_text("I disagree;") == "I disagree"
    assert clean_text('“A choice”"') == "A choice"
    assert clean_text("'\"Nested quotes.\"'") == "Nested quotes."
    assert clean_text('("In parentheses")') == "In parentheses"
    assert clean_text("I will consider 'fairness'") == "I will consider 'fairness'"
    assert clean_text('"Yes," I said, "fine"') == '"Yes," I said, "fine"'


@pytest.mark.parametrize(
    ("name", "damage", "given"),
    [
        ("moralchoice.csv", "cut", None),
        ("foundation.csv", "junk", N_FOUNDATIONS - 1),
        ("views.csv", "junk", N_WORLDVIEWS - 1),
    ],
    ids=["moralchoice-cut-mid-row", "foundation-junk-row", "views-junk-row"],
)
def test_a_file_giving_fewer_scenarios_than_published_is_refused(tmp_path, name, damage, given):
    folder = _copy(tmp_path)
    path = folder / name
    data = path.read_bytes()
    if damage == "cut":  # cut mid-row, well before the end
        path.write_bytes(data[: int(len(data) * 0.37)])
    else:  # a junk row replaces a real one
        lines = data.split(b"\r\n") if b"\r\n" in data else data.split(b"\n")
        sep = b"\r\n" if b"\r\n" in data else b"\n"
        path.write_bytes(sep.join([lines[0], b"junk,row", *lines[2:]]))
    with pytest.raises(InvalidInput) as info:
        load_bank("progressgym", path=folder)
    message = str(info.value)
    assert "\n" not in message and f"of the published {name}" in message and "--allow-partial-bank" in message
    if given is not None:
        assert f"gives {given} of the" in message
    loaded = load_bank("progressgym", path=folder, allow_partial=True)
    assert any(
        line.startswith(f"{name}: dropped ") and "published scenarios" in line for line in loaded.report
    )
