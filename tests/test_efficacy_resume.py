"""The efficacy script's resume and work-folder rules, with its steps stubbed (no training).

A resumed run must never reuse a result made with other settings: a step that failed or was
killed after its new config was written leaves the old marker behind, older than the config.
The work folder is the script's own (it writes summary.json and goals.md there), and a
summary never mixes arms made with different settings.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.build_support import stub_manifest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the script imports it the same way
efficacy = importlib.import_module("efficacy_smollm2")


class Steps:
    """Stands in for `Experiment.run`: records each step and makes its marker, or fails."""

    def __init__(self, exp, fail: bool = False) -> None:
        self.exp, self.fail, self.ran = exp, fail, []
        self.commands: list[list[str]] = []
        exp.run = self

    def __call__(self, name: str, cmd: list[str], resumed_from: str | None = None) -> None:
        self.ran.append(name)
        self.commands.append(cmd)
        if self.fail:
            raise SystemExit(f"step failed (1): {name}")
        work = self.exp.work
        if name.startswith("build_"):
            (work / "build" / name[6:]).mkdir(parents=True, exist_ok=True)
            (work / "build" / name[6:] / "manifest.json").write_text("{}")
        elif name.startswith("train_"):
            lora = work / "train" / name[6:] / "lora"
            lora.mkdir(parents=True, exist_ok=True)
            (lora / "adapter_model.safetensors").write_text(str(self.exp.size.steps))
        elif name.startswith("eval_"):
            style, arm = name[5:].split("_", 1)
            out = efficacy.eval_paths(work, arm, style)[1]
            out.mkdir(parents=True, exist_ok=True)
            (out / "results.json").write_text("{}")


def _experiment(work: Path, size=efficacy.QUICK):
    return efficacy.Experiment(work, work / "shared", size, "1")


def _sft_rows(work: Path) -> None:
    for name in ("sft_harmless.jsonl", "sft_helpful.jsonl"):
        path = work / "build" / "origin" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('{"instruction": "q", "output": "a"}\n')


def test_a_build_that_failed_with_new_settings_reruns_on_resume(tmp_path):
    Steps(first := _experiment(tmp_path))
    first.build("origin")
    bigger = replace(efficacy.QUICK, helpful_n=efficacy.QUICK.helpful_n + 1)
    with pytest.raises(SystemExit):
        Steps(failed := _experiment(tmp_path, bigger), fail=True)
        failed.build("origin")
    resumed = Steps(again := _experiment(tmp_path, bigger))
    again.build("origin")
    assert resumed.ran == ["build_origin"], "the old build was reused for the new settings"
    unchanged = Steps(same := _experiment(tmp_path, bigger))
    same.build("origin")
    assert unchanged.ran == [], "a finished step must be skipped"


def test_steps_log_their_progress_and_older_folders_resume(tmp_path):
    """Each step's log shows its progress (builds and evaluations ran silent: `progress:
    false`, `--quiet`). The key changes no output, so a folder built with it is resumed, while
    any other change still reruns."""
    steps = Steps(first := _experiment(tmp_path))
    first.build("origin")
    first.evaluate("base", "model", None, "analysis")
    assert "progress" not in first.build_config("origin")
    assert all("--quiet" not in cmd for cmd in steps.commands)
    path = tmp_path / "build_origin.yml"
    data = efficacy.yaml.safe_load(path.read_text())
    manifest = tmp_path / "build" / "origin" / "manifest.json"
    efficacy.write_yaml(path, {**data, "progress": False})
    manifest.write_text("{}")  # made after its config, as a finished step's marker is
    unchanged = Steps(again := _experiment(tmp_path))
    again.build("origin")
    assert unchanged.ran == [], "a presentation-only difference must not rebuild"
    efficacy.write_yaml(path, {**data, "progress": False, "seed": data.get("seed", 0) + 1})
    manifest.write_text("{}")
    changed = Steps(other := _experiment(tmp_path))
    other.build("origin")
    assert changed.ran == ["build_origin"]


def test_a_training_that_failed_with_new_steps_reruns_on_resume(tmp_path):
    _sft_rows(tmp_path)
    Steps(first := _experiment(tmp_path))
    first.train("sft", "model")
    longer = replace(efficacy.QUICK, steps=efficacy.QUICK.steps * 2)
    with pytest.raises(SystemExit):
        Steps(failed := _experiment(tmp_path, longer), fail=True)
        failed.train("sft", "model")
    resumed = Steps(again := _experiment(tmp_path, longer))
    lora = again.train("sft", "model")
    assert resumed.ran == ["train_sft"]
    assert (lora / "adapter_model.safetensors").read_text() == str(longer.steps)


def test_current_accepts_only_arms_made_with_this_runs_settings(tmp_path):
    _sft_rows(tmp_path)
    exp = _experiment(tmp_path)
    Steps(exp)
    exp.build("origin")  # the SFT rows' build, made with these settings
    for arm in ("base", "sft"):
        adapter = None if arm == "base" else exp.train(arm, "model")
        for style in ("analysis", "alpaca"):
            exp.evaluate(arm, "model", adapter, style)
    assert exp.current("base", "model") and exp.current("sft", "model")
    assert not exp.current("paper", "model")  # never trained here
    other = _experiment(tmp_path, replace(efficacy.QUICK, steps=efficacy.QUICK.steps + 1))
    assert other.current("base", "model") and not other.current("sft", "model")
    rows = efficacy.summary_rows(tmp_path, lambda arm: other.current(arm, "model"))
    assert rows["sft"] == {} and "headline" in rows["base"]


def test_a_foreign_work_folder_is_refused_and_left_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "notes" / "summary.json"
    mine.parent.mkdir()
    mine.write_text('{"mine": "do not lose"}')
    # a relative --work is the current directory's, refused before anything is read or made
    with pytest.raises(SystemExit, match=r"notes.*1 entries efficacy_smollm2.py did not write"):
        efficacy.main(["--work", "notes", "--shared", str(tmp_path / "no-shared")])
    assert json.loads(mine.read_text()) == {"mine": "do not lose"}
    assert sorted(p.name for p in mine.parent.iterdir()) == ["summary.json"]
    with pytest.raises(SystemExit, match="is not a folder"):
        efficacy.main(["--work", "notes/summary.json"])


def test_its_own_folders_are_accepted(tmp_path):
    efficacy.claim_work_folder(tmp_path / "new", overwrite=False)
    assert (tmp_path / "new" / efficacy.WORK_MARKER).exists()
    (tmp_path / "new" / "summary.json").write_text("{}")
    efficacy.claim_work_folder(tmp_path / "new", overwrite=False)  # again: its own
    legacy = tmp_path / "legacy" / "data"  # made before the marker existed
    legacy.mkdir(parents=True)
    (legacy / "split.json").write_text("{}")
    efficacy.claim_work_folder(tmp_path / "legacy", overwrite=False)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "x").write_text("x")
    efficacy.claim_work_folder(tmp_path / "foreign", overwrite=True)


@pytest.mark.parametrize(
    "argv, problem",
    [
        (["--arms", ","], "--arms is empty"),
        (["--steps", "0"], "at least 1"),
        (["--helpful-n", "-5"], "at least 1"),
        (["--threads", "abc"], "whole number"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(argv, problem, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        efficacy.main([*argv, "--work", str(tmp_path / "w")])
    assert exit_.value.code == 2 and problem in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize(
    "arms, builds",
    [
        (["base"], []),  # only evaluated: no dataset to build (the origin build took minutes)
        (["sft"], ["origin"]),  # the SFT rows every trained arm shares
        (["base", "paper"], ["origin", "paper"]),
        (["refusal"], ["origin"]),
        (["anchored_refusal"], ["origin", "anchored"]),
        (["sft_matched"], ["origin", "anchored"]),  # its steps come from anchored's row counts
        (list(efficacy.ARMS), ["origin", "paper", "anchored"]),  # the defaults, in their order
    ],
)
def test_only_the_datasets_the_arms_train_on_are_built(arms, builds):
    assert efficacy.builds_needed(arms) == builds


def test_evaluations_read_only_the_split_folder(tmp_path):
    """Every file an evaluation reads is in the split folder (whose content the split checks on
    resume), none straight from --shared, where an edit would go unnoticed."""
    exp = _experiment(tmp_path)
    paths = []

    def collect(node) -> None:
        if isinstance(node, dict):
            paths.extend(str(v) for k, v in node.items() if k == "path")
            for value in node.values():
                collect(value)

    collect(exp.eval_config("anchored", "model", None, "analysis")["prompt_sets"])
    assert len(paths) >= 5
    assert all(Path(p).parent == exp.data for p in paths), paths


def test_a_retraining_clears_only_axolotls_prepared_rows(tmp_path):
    """`--overwrite` lets the script into a folder with someone's files; a retraining then
    removed all of train/<arm>/prepared. Now only Axolotl's own entries go; anything else
    stops the run with the folder untouched."""
    prepared = tmp_path / "prepared"
    (prepared / "209a5ecdb572b539f2d9f5a318bba12c").mkdir(parents=True)
    (prepared / "209a5ecdb572b539f2d9f5a318bba12c" / "state.json").write_text("{}")
    (prepared / "datasets_prep.lock").write_text("")
    efficacy.clear_prepared(prepared)
    assert not prepared.exists()
    efficacy.clear_prepared(prepared)  # nothing there: nothing to do
    (prepared / "0123456789abcdef0123456789abcdef").mkdir(parents=True)
    (prepared / "keep.txt").write_text("mine")
    with pytest.raises(
        SystemExit, match=r"holds files Axolotl's dataset preparation did not write \(keep\.txt\)"
    ):
        efficacy.clear_prepared(prepared)
    assert (prepared / "keep.txt").read_text() == "mine"


def test_only_a_goals_file_of_its_own_is_removed(tmp_path):
    goals = tmp_path / "goals.md"
    goals.write_text("# my goals for this quarter\n")
    assert not efficacy.is_goals_file(goals)
    goals.write_bytes(b"\xff\xfe")
    assert not efficacy.is_goals_file(goals) and not efficacy.is_goals_file(tmp_path / "none.md")
    from efficacy_goals import Check

    goals.write_text(efficacy.render([Check("AUC ≥ 0.80", "anchored", 0.86, 0.8, True, "0.86")]))
    assert efficacy.is_goals_file(goals)


class KilledTraining(Steps):
    """Stands in for a training killed after its checkpoint at step 6 and during its save at
    step 12 (whose state file, written last, is missing); records the checkpoints each training
    found when it started."""

    def __init__(self, exp, killed: bool = False) -> None:
        super().__init__(exp, fail=killed)
        self.found: list[list[str]] = []
        self.resumed_from: list[str | None] = []

    def __call__(self, name: str, cmd: list[str], resumed_from: str | None = None) -> None:
        lora = self.exp.work / "train" / name[6:] / "lora"
        self.found.append([p.name for p in efficacy.checkpoints(lora)])
        self.resumed_from.append(resumed_from)
        if self.fail:
            for step in (6, 12):
                (lora / f"checkpoint-{step}").mkdir(parents=True, exist_ok=True)
            (lora / "checkpoint-6" / "trainer_state.json").write_text('{"global_step": 6}')
        super().__call__(name, cmd, resumed_from)


def _train(work: Path, size=efficacy.QUICK, killed: bool = False) -> KilledTraining:
    exp = _experiment(work, size)
    steps = KilledTraining(exp, killed)
    if killed:
        with pytest.raises(SystemExit):
            exp.train("sft", "model")
    else:
        exp.train("sft", "model")
    return steps


def test_a_killed_training_resumes_only_from_its_own_complete_checkpoint(tmp_path, capsys):
    """A rerun of the same settings and inputs leaves the last complete checkpoint for Axolotl's
    auto-resume; one cut short, or one of other steps or rows, is removed first, since Axolotl
    resumes from whatever checkpoint has the highest step. A finished adapter keeps none."""
    _sft_rows(tmp_path)
    lora = tmp_path / "train" / "sft" / "lora"
    _train(tmp_path, killed=True)
    resumed = _train(tmp_path)
    assert resumed.found == [["checkpoint-6"]]
    assert resumed.resumed_from == ["checkpoint-6"]
    assert "resuming train_sft from checkpoint-6" in capsys.readouterr().out
    assert (lora / "adapter_model.safetensors").exists() and not efficacy.checkpoints(lora)

    rebuilt = tmp_path / "rebuilt"  # killed, then the SFT rows are rebuilt with other rows
    _sft_rows(rebuilt)
    _train(rebuilt, killed=True)
    (rebuilt / "build" / "origin" / "sft_helpful.jsonl").write_text(
        '{"instruction": "q2", "output": "a2"}\n'
    )
    again = _train(rebuilt)
    assert again.found == [[]], "a checkpoint of other rows was resumed"
    assert again.resumed_from == [None]

    longer = tmp_path / "longer"  # killed, then rerun with other steps
    _sft_rows(longer)
    _train(longer, replace(efficacy.QUICK, steps=efficacy.QUICK.steps * 2), killed=True)
    assert _train(longer).found == [[]], "a checkpoint of other steps was resumed"
    assert "resuming" not in capsys.readouterr().out


def test_checkpoint_keys_do_not_make_a_finished_training_stale(tmp_path):
    """Trainings finished before the config saved checkpoints are still finished: the keys
    change how a training recovers from a kill, not the adapter it makes."""
    _sft_rows(tmp_path)
    exp = _experiment(tmp_path)
    Steps(exp)
    exp.train("sft", "model")
    config = tmp_path / "train_sft.yml"
    data = efficacy.yaml.safe_load(config.read_text())
    assert data["auto_resume_from_checkpoints"] is True and data["save_strategy"] == "steps"
    assert data["save_steps"] == efficacy.QUICK.checkpoint_steps
    older = {k: v for k, v in data.items() if "save" not in k and "resume" not in k}
    efficacy.write_yaml(config, {**older, "save_strategy": "no"})
    (tmp_path / "train" / "sft" / "lora" / "adapter_model.safetensors").write_text("12")
    assert exp.trained("sft", "model")


def test_a_resumed_step_keeps_the_killed_attempts_log_and_says_where_it_went_on(tmp_path):
    """The log of a training resumed from a checkpoint holds the killed attempt's lines, then
    a line naming the checkpoint, then its own: the steps before the checkpoint are in the
    adapter, so their losses stay readable. A step run anew replaces its log."""
    log = tmp_path / "train_sft.log"
    log.write_text("step 6: loss 2.5\n")
    env = {**os.environ, "PYTHONPATH": ""}
    efficacy.sh([sys.executable, "-c", "print('step 12: loss 2.1')"], log, env, "checkpoint-6")
    text = log.read_text()
    marker = efficacy.RESUMED_LINE.format(checkpoint="checkpoint-6")
    assert text.index("step 6: loss 2.5") < text.index(marker) < text.index("step 12: loss 2.1")
    efficacy.sh([sys.executable, "-c", "print('anew')"], log, env)
    assert log.read_text() == "anew\n"


def test_the_summary_marks_timings_that_count_only_the_resumed_part(tmp_path):
    """A resumed training's wall time covers the steps after its checkpoint, so the summary
    names the checkpoint beside it; an earlier run's mark stays for a step this run did not
    redo and goes for one it ran anew."""
    (tmp_path / "summary.json").write_text(
        json.dumps(
            {
                "timings_resumed_from": {
                    "train_sft": "checkpoint-6",
                    "train_anchored": "checkpoint-4",
                }
            }
        )
    )
    exp = _experiment(tmp_path)
    exp.timings = {"train_sft": 10.0, "train_paper": 20.0}
    exp.resumed = {"train_paper": "checkpoint-8"}
    assert efficacy.partial_timings(efficacy.previous_summary(tmp_path), exp) == {
        "train_anchored": "checkpoint-4",
        "train_paper": "checkpoint-8",
    }
    (tmp_path / "summary.json").write_text("[]")  # not a summary this script wrote
    assert efficacy.partial_timings(efficacy.previous_summary(tmp_path), exp) == {
        "train_paper": "checkpoint-8"
    }
    assert efficacy.previous_timings(efficacy.previous_summary(tmp_path)) == {}


def _manifest(work: Path, build: str, rows: dict[str, int]) -> None:
    folder = work / "build" / build
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: {"role": "x", "rows": n} for name, n in rows.items()}
    (folder / "manifest.json").write_text(json.dumps(stub_manifest(files).to_json()))


def test_sft_matched_trains_for_the_steps_the_anchored_arm_spends_on_sft_rows(tmp_path):
    """At the full size the anchored arm draws 160 x 8 rows from 1,090 analyses and the 510 SFT
    rows, so about 408 SFT rows: SFT-only sees as many in 51 steps. The same SFT data and
    settings as the sft arm; only the steps (and the warm-up scaled from them) differ."""
    exp = _experiment(tmp_path, efficacy.FULL)
    _sft_rows(tmp_path)
    assert exp.arm_steps("sft_matched") is None  # no build yet: no counts
    assert not exp.trained("sft_matched", "model")
    with pytest.raises(SystemExit, match=r"anchored build's row counts.*manifest.json"):
        exp.train_config("sft_matched", "model")
    _manifest(tmp_path, "origin", {"sft_harmless.jsonl": 110, "sft_helpful.jsonl": 400})
    _manifest(tmp_path, "anchored", {"mistake_analysis.jsonl": 1090})
    assert exp.arm_steps("sft_matched") == 51 and exp.arm_steps("sft") == 160
    matched, sft = exp.train_config("sft_matched", "m"), exp.train_config("sft", "m")
    assert (matched["max_steps"], matched["warmup_steps"]) == (51, 2)
    assert matched["datasets"] == sft["datasets"]
    differ = {k for k in sft if sft[k] != matched[k]}
    assert differ == {"max_steps", "warmup_steps", "dataset_prepared_path", "output_dir"}
    # fewer analyses, more of the steps go to SFT rows
    _manifest(tmp_path, "anchored", {"mistake_analysis.jsonl": 510})
    assert exp.arm_steps("sft_matched") == 80
    # a file that is not the builder's manifest gives no counts, however it looks
    (tmp_path / "build" / "anchored" / "manifest.json").write_text(
        json.dumps({"files": {"mistake_analysis.jsonl": {"rows": 510}}})
    )
    assert exp.arm_steps("sft_matched") is None
    (tmp_path / "build" / "anchored" / "manifest.json").write_text("{not json")
    assert exp.arm_steps("sft_matched") is None  # unreadable: the build step remakes it
