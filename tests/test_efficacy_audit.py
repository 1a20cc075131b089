"""Resume and summary rules of the efficacy script that an audit found broken, with its steps
stubbed (no build, training or evaluation runs): a retraining must not read the previous
inputs' tokenised rows, an arm is current only if its datasets were built with this run's
settings, the comparison tables hold only arms of this run's settings, and the goals script
judges only a summary in which every arm it compares was measured.
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from axolotl_mistake.evaluate.compare import MARKER as COMPARE_MARKER
from tests.build_support import stub_manifest
from tests.test_efficacy_resume import Steps, _experiment, _sft_rows

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the script imports it the same way
efficacy = importlib.import_module("efficacy_smollm2")
goals = importlib.import_module("efficacy_goals")


class Tokenising(Steps):
    """A training step that behaves like `axolotl train` with `dataset_prepared_path`: it
    reads the tokenised rows left there if any (Axolotl keys them by the datasets' paths and
    types, not by their content), else tokenises the inputs and leaves them there."""

    def __init__(self, exp) -> None:
        super().__init__(exp)
        self.trained_on: list[str] = []

    def __call__(self, name: str, cmd: list[str], resumed_from: str | None = None) -> None:
        if name.startswith("train_"):
            arm = name[6:]
            # named as Axolotl names it: an md5 hex digest
            prepared = self.exp.work / "train" / arm / "prepared" / ("0123abcd" * 4)
            if prepared.is_dir():
                rows = (prepared / "rows").read_text()
            else:
                rows = "".join(f.read_text() for f in self.exp.train_inputs(arm))
                prepared.mkdir(parents=True)
                (prepared / "rows").write_text(rows)
            self.trained_on.append(rows)
        super().__call__(name, cmd)


def test_a_retraining_on_changed_inputs_tokenises_the_new_rows(tmp_path):
    _sft_rows(tmp_path)
    exp = _experiment(tmp_path)
    steps = Tokenising(exp)
    exp.train("sft", "model")
    helpful = tmp_path / "build" / "origin" / "sft_helpful.jsonl"
    helpful.write_text('{"instruction": "new", "output": "rows"}\n')  # a rebuild changed them
    exp.train("sft", "model")
    assert steps.ran == ["train_sft", "train_sft"]
    assert "new" in steps.trained_on[1], "retrained on the old inputs' tokenised rows"
    assert exp.trained("sft", "model")


def _analyses(work: Path, build: str) -> None:
    path = work / "build" / build / "mistake_analysis.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"instruction": "q", "output": "The answer is harmful."}\n')


def test_an_arm_built_with_other_settings_is_not_current(tmp_path):
    """A run that does not rebuild an arm (not in --arms) must not count that arm's adapter,
    trained on a build made with other settings, as made with this run's settings."""
    exp = _experiment(tmp_path)
    Steps(exp)
    for build in ("origin", "paper"):
        exp.build(build)
    _sft_rows(tmp_path)
    _analyses(tmp_path, "paper")
    for arm in ("sft", "paper"):
        adapter = exp.train(arm, "model")
        for style in ("analysis", "alpaca"):
            exp.evaluate(arm, "model", adapter, style)
    assert exp.current("sft", "model") and exp.current("paper", "model")
    more = _experiment(tmp_path, replace(efficacy.QUICK, paper_k=efficacy.QUICK.paper_k + 1))
    assert not more.current("paper", "model"), "the paper build was made with another paper_k"
    assert more.current("sft", "model")  # its build (origin) does not depend on paper_k
    rows = efficacy.summary_rows(tmp_path, lambda arm: more.current(arm, "model"))
    assert rows["paper"] == {} and rows["sft"]


def _stub_main(monkeypatch) -> list[str]:
    """`efficacy.main` with every step stubbed: returns the list of step names it runs."""
    import axolotl_mistake.models

    ran: list[str] = []

    def run(exp, name: str, cmd: list[str], resumed_from: str | None = None) -> None:
        ran.append(name)
        exp.timings[name] = 1.0  # as the real step records its seconds
        work = exp.work
        if name.startswith("build_"):
            out = work / "build" / name[6:]
            out.mkdir(parents=True, exist_ok=True)
            files = ("sft_harmless.jsonl", "sft_helpful.jsonl", "mistake_analysis.jsonl")
            for file in files:
                (out / file).write_text('{"instruction": "q", "output": "a"}\n')
            manifest = stub_manifest({file: {"role": "x", "rows": 1} for file in files})
            (out / "manifest.json").write_text(json.dumps(manifest.to_json()))
        elif name.startswith("train_"):
            lora = work / "train" / name[6:] / "lora"
            lora.mkdir(parents=True, exist_ok=True)
            (lora / "adapter_model.safetensors").write_text(cmd[-3])
        elif name.startswith("eval_"):
            style, arm = name[5:].split("_", 1)
            out = efficacy.eval_paths(work, arm, style)[1]
            out.mkdir(parents=True, exist_ok=True)
            (out / "results.json").write_text("{}")
        elif name.startswith("compare_"):
            out = Path(cmd[cmd.index("--output") + 1])
            out.mkdir(parents=True, exist_ok=True)
            (out / "compare.md").write_text(" ".join(cmd))
            (out / COMPARE_MARKER).write_text("{}")  # as compare marks its folder

    def split(shared: Path, out: Path) -> dict:
        out.mkdir(parents=True, exist_ok=True)
        (out / "split.json").write_text("{}")
        return {}

    def refusal_rows(data: Path, out: Path, limit: int) -> int:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text('{"instruction": "q", "output": "no"}\n' * limit)
        return limit

    def label_pairs(data: Path, out: Path, limit: int) -> int:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text('{"question": "q", "answer": "no", "harmful": false}\n' * limit)
        return limit

    monkeypatch.setattr(efficacy.Experiment, "run", run)
    monkeypatch.setattr(efficacy, "write_refusal_rows", refusal_rows)
    writers = {
        arm: replace(spec, write_pairs=label_pairs)
        for arm, spec in efficacy.LABEL_ARM_SPECS.items()
    }
    monkeypatch.setattr(efficacy, "LABEL_ARM_SPECS", writers)
    monkeypatch.setattr(efficacy, "split_shared", split)
    monkeypatch.setattr(axolotl_mistake.models, "ensure_embedded_model", lambda: "model")
    return ran


def test_comparison_tables_hold_only_arms_of_this_runs_settings(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    ran = _stub_main(monkeypatch)
    assert efficacy.main(["--quick", "--work", str(work)]) == 0
    plain = work / "compare" / "analysis_plain" / "compare.md"
    assert plain.exists() and (work / "goals.md").exists()
    sft_run = efficacy.eval_paths(work, "sft")[1]
    assert f"--paired-with {sft_run}" in plain.read_text()  # the stub writes the command there
    # sft and anchored retrained with another seed: paper and origin are now of other settings
    ran.clear()
    assert efficacy.main(["--quick", "--work", str(work), "--arms", "base,sft,anchored",
                          "--train-seed", "1"]) == 0  # fmt: skip
    assert "train_sft" in ran and not (work / "goals.md").exists()
    for name in ("analysis_plain", "analysis_harmless_guided", "alpaca_plain"):
        assert not (work / "compare" / name).exists(), f"{name} still shows the old sft arm"
    # back to seed 0 with sft retrained (its adapter lost): all five arms are current again,
    # so summary.json and goals.md hold them, and the comparison tables must be made anew
    ran.clear()
    assert efficacy.main(["--quick", "--work", str(work), "--arms", "base,sft,anchored"]) == 0
    assert json.loads((work / "summary.json").read_text())["arms"]["paper"]
    assert (work / "goals.md").exists()
    assert "compare_analysis_plain" in ran and plain.exists()


def test_each_size_evaluates_only_its_probe_styles(tmp_path, monkeypatch):
    """The full size probes in both styles; `--quick` leaves the alpaca-style re-probe out (its
    20-minute budget). A quick run in a folder that holds a full run's alpaca-style results
    neither reads them into its summary nor keeps their comparison table."""
    work = tmp_path / "work"
    ran = _stub_main(monkeypatch)
    assert efficacy.main(["--work", str(work)]) == 0
    assert {f"eval_{style}_anchored" for style in ("analysis", "alpaca")} <= set(ran)
    assert (work / "compare" / "alpaca_plain" / "compare.md").exists()
    full = json.loads((work / "summary.json").read_text())["arms"]
    assert all("discrimination_alpaca" in full[arm] for arm in efficacy.ARMS)
    ran.clear()
    assert efficacy.main(["--quick", "--work", str(work)]) == 0
    evals = [step for step in ran if step.startswith("eval_")]
    assert evals and all(step.startswith("eval_analysis_") for step in evals)
    assert not (work / "compare" / "alpaca_plain").exists()
    assert (work / "compare" / "analysis_plain" / "compare.md").exists()
    quick = json.loads((work / "summary.json").read_text())["arms"]
    assert all("discrimination_alpaca" not in quick[arm] for arm in efficacy.ARMS)
    assert all("discrimination_analysis" in quick[arm] for arm in efficacy.ARMS)


def test_a_rerun_that_skips_every_step_keeps_the_runs_total_time(tmp_path, monkeypatch):
    work = tmp_path / "work"
    ran = _stub_main(monkeypatch)
    clock = (100 * i * i for i in range(10**4))  # each run's wall time longer than the last
    monkeypatch.setattr(efficacy.time, "perf_counter", lambda: float(next(clock)))
    assert efficacy.main(["--quick", "--work", str(work)]) == 0
    first = json.loads((work / "summary.json").read_text())["timings_s"]
    assert ran and "total" in first
    ran.clear()
    assert efficacy.main(["--quick", "--work", str(work)]) == 0
    # nothing to redo: only the comparison tables and the summary are made again
    assert ran and all(step.startswith("compare_") for step in ran)
    again = json.loads((work / "summary.json").read_text())["timings_s"]
    assert again["total"] == first["total"]


def test_the_refusal_control_table_never_mixes_settings(tmp_path, monkeypatch):
    work = tmp_path / "work"
    ran = _stub_main(monkeypatch)
    efficacy.main(["--quick", "--work", str(work), "--arms", "sft,anchored"])
    ran.clear()
    efficacy.main(["--quick", "--work", str(work), "--arms", "refusal,anchored_refusal",
                   "--steps", "13"])  # fmt: skip
    assert "train_refusal" in ran
    assert not any(step.startswith("compare_refusal_control") for step in ran), (
        "sft and anchored (12 steps) compared with the control arms (13 steps)"
    )
    ran.clear()
    efficacy.main(["--quick", "--work", str(work), "--arms", "sft,anchored,refusal,anchored_refusal",
                   "--steps", "13"])  # fmt: skip
    assert "compare_refusal_control_plain" in ran


def test_the_exposure_control_is_trained_and_compared_when_asked(tmp_path, monkeypatch):
    """`--arms sft_matched`: SFT-only for the steps in which the anchored arm sees its SFT rows
    (the stub's builds: 2 SFT rows and 1 analysis, so 12 x 2/3 = 8 quick steps), and a table of
    every arm paired against it; the default run makes neither."""
    work = tmp_path / "work"
    ran = _stub_main(monkeypatch)
    efficacy.main(["--quick", "--work", str(work)])
    assert "train_sft_matched" not in ran and "compare_sft_exposure_plain" not in ran
    ran.clear()
    efficacy.main(["--quick", "--work", str(work), "--arms", "sft_matched"])
    assert ran[0] == "train_sft_matched"  # the builds it needs are there and current
    config = yaml.safe_load((work / "train_sft_matched.yml").read_text())
    assert config["max_steps"] == 8
    table = (work / "compare" / "sft_exposure_plain" / "compare.md").read_text()
    assert f"--paired-with {efficacy.eval_paths(work, 'sft_matched')[1]}" in table
    assert "compare_sft_exposure_harmless_guided" in ran


def test_the_label_arms_table_holds_the_label_arms_made(tmp_path, monkeypatch):
    """Any label arm (or the PKU-only anchored arm) may be run alone: its table must not wait for
    the others."""
    work = tmp_path / "work"
    ran = _stub_main(monkeypatch)
    efficacy.main(["--quick", "--work", str(work)])
    assert not any(step.startswith("compare_refusal_labels") for step in ran)
    table = work / "compare" / "refusal_labels_plain" / "compare.md"

    def runs() -> set[str]:
        arms = ("anchored_pku", *efficacy.LABEL_ARMS)
        return {a for a in arms if str(efficacy.eval_paths(work, a)[1]) in text()}

    def text() -> str:
        return table.read_text()

    for arms, expected in (
        ("anchored_hh_refusals", {"anchored_hh_refusals"}),
        ("anchored_refusal_labels", {"anchored_hh_refusals", "anchored_refusal_labels"}),
        ("anchored_pku", {"anchored_hh_refusals", "anchored_refusal_labels", "anchored_pku"}),
    ):
        ran.clear()
        efficacy.main(["--quick", "--work", str(work), "--arms", arms])
        assert "compare_refusal_labels_plain" in ran and runs() == expected
        assert str(efficacy.eval_paths(work, "anchored")[1]) in text()
    # sft and anchored retrained at other steps: the label arms are of other settings
    efficacy.main(["--quick", "--work", str(work), "--arms", "sft,anchored", "--steps", "13"])
    assert not table.exists()


def test_the_default_anchored_build_reads_its_alpaca_answers_written_before_it(
    tmp_path, monkeypatch
):
    work = tmp_path / "work"
    ran = _stub_main(monkeypatch)
    efficacy.main(["--quick", "--work", str(work), "--arms", "anchored"])
    assert ran[:2] == ["build_origin", "build_anchored"]
    pairs = work / "build" / "refusal" / "alpaca_answer_pairs.jsonl"
    assert len(pairs.read_text().splitlines()) == efficacy.QUICK.refusal_label_n
    redteam = yaml.safe_load((work / "build_anchored.yml").read_text())["redteam"]
    assert redteam[1:] == [{"kind": "pairs", "path": str(pairs)}]
    assert sorted(p.name for p in pairs.parent.iterdir()) == ["alpaca_answer_pairs.jsonl"]
    ran.clear()
    efficacy.main(["--quick", "--work", str(work), "--arms", "anchored_pku"])
    assert ran[:1] == ["build_anchored_pku"]  # no pairs: PKU-SafeRLHF's answers only
    redteam = yaml.safe_load((work / "build_anchored_pku.yml").read_text())["redteam"]
    assert [source["kind"] for source in redteam] == ["pku_saferlhf"]


def _summary(tmp_path: Path, arms: dict) -> Path:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"arms": arms}))
    return path


def test_the_goals_script_refuses_a_summary_without_every_compared_arm(tmp_path, capsys):
    """efficacy_smollm2.py writes no goals.md when an arm has no results at the run's settings
    (its summary entry is empty); the goals script must not judge that summary either, or
    'the best mistake-analysis arm' is the best of those that happen to be there."""
    from tests.test_efficacy_goals import arms

    full = arms()
    full["origin"] = full["paper"]
    assert goals.main([str(_summary(tmp_path, full))]) == 0
    assert "`anchored`" in capsys.readouterr().out
    partial = {**full, "paper": {}, "origin": {}}
    with pytest.raises(SystemExit) as exc:
        goals.main([str(_summary(tmp_path, partial))])
    message = str(exc.value.code)
    assert "paper, origin" in message and "\n" not in message
