"""Every file the recipes' comments or recipes/README.md name exists, and every command they show
parses: builder commands through the builder's config loader, evaluation configs through the
evaluation's, `axolotl train`/`preprocess` through Axolotl's own CLI parser and `load_cfg` (with
the tiny test model as base), `accelerate launch` through accelerate's parser, `--help` for the
rest. Nothing is built, trained or downloaded.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
from pathlib import Path

import pytest

pytest.importorskip("axolotl")

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
SHARED_DATA = REPO.parent / "shared" / "data"  # the read-only data beside a checkout, if any
GPU_CAPABILITIES = (
    {"bf16": True, "fp8": False, "tf32": True, "n_gpu": 1, "compute_capability": "sm_80"},
    {"torch_version": "2.8.0"},
)
EMBEDDED = '"$(python -m axolotl_mistake.models)"'
# placeholders the prose uses inside commands, and what the test puts in their place
PLACEHOLDERS = {" N ": " 2 ", "i/n": "0/2"}


def header(path: Path) -> list[str]:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


def recipe_files() -> list[Path]:
    return sorted(RECIPES.glob("*.yml"))


def is_cpu(path: Path) -> bool:
    return "CPU only" in "\n".join(header(path))


def header_commands(path: Path) -> list[str]:
    """The command lines of a header's `Commands` block (trailing `# ...` comments removed)."""
    out: list[str] = []
    lines = header(path)
    start = next((i for i, line in enumerate(lines) if line.startswith("# Commands")), None)
    if start is None:
        return out
    for line in lines[start + 1 :]:
        if not line.startswith("#   "):
            break
        text = line[1:].strip()
        if text.startswith("#"):  # a comment inside the block, maybe "(same as: CMD)"
            same = re.search(r"\(same as: (.+)\)\s*$", text)
            if same:
                out.append(same.group(1).strip())
            continue
        out.append(text.split("   #", 1)[0].strip())
    return out


def prose(path: Path) -> str:
    """A header's text with comment markers removed and lines joined (spans may wrap)."""
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    return " ".join(line.lstrip("#").strip() for line in header(path))


def code_spans(text: str) -> list[str]:
    return [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", text)]


def is_template(text: str) -> bool:
    """Naming patterns such as `axolotl train recipes/<name>.yml` describe, they do not run."""
    return "<" in text and ">" in text


COMMAND_START = ("python -m ", "axolotl ", "accelerate launch ", "pip install ", "pytest ")


def all_commands() -> list[tuple[str, str]]:
    """(where, command) for every command in a header's Commands block or a code span."""
    found: list[tuple[str, str]] = []
    for path in [*recipe_files(), RECIPES / "README.md"]:
        for cmd in header_commands(path) if path.suffix == ".yml" else []:
            found.append((path.name, cmd))
        for span in code_spans(prose(path)):
            if span.startswith(COMMAND_START) and not is_template(span):
                found.append((path.name, span))
    return found


def flag_spans() -> list[tuple[Path, str]]:
    """Build-config headers show extra flags as spans (`--mistakes.mode origin`)."""
    return [
        (path, span)
        for path in sorted(RECIPES.glob("*.build.yml"))
        for span in code_spans(prose(path))
        if span.startswith("--")
    ]


# --- files ---------------------------------------------------------------------------------

FILE_PATTERNS = (
    r"(?<![\w/.*<-])(recipes/[\w.-]+\.(?:yml|json))",
    r"(?<![\w/.*<-])([\w-]+(?:\.build|\.eval)?\.yml)\b",
    r"(?<![\w/.*<-])([\w-]+\.json)\b",
    r"(?<![\w/.-])((?:benchmarks|axolotl_mistake|dataset_builders|tests|\.ci)/[\w/.-]+\.(?:py|md|sh|json))",
)
NOT_FILES = {"manifest.json", "results.json", "compare.json", "package.json", "tekken.json"}
"""Outputs, and files of a model's own repository (a Mistral tokenizer), not of this one."""


def named_files(path: Path) -> set[str]:
    text = prose(path)
    names: set[str] = set()
    for pattern in FILE_PATTERNS:
        names.update(re.findall(pattern, text))
    if path.suffix == ".md":
        names.update(re.findall(r"\]\(([\w.-]+\.(?:yml|json))\)", text))
    return {n for n in names if n not in NOT_FILES and not is_template(n)}


def resolve(name: str) -> Path:
    return REPO / name if "/" in name else RECIPES / name


@pytest.mark.parametrize("doc", [*recipe_files(), RECIPES / "README.md"], ids=lambda p: p.name)
def test_every_named_file_exists(doc):
    names = named_files(doc)
    missing = sorted(n for n in names if not resolve(n).is_file())
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


def test_file_scan_finds_what_it_should():
    """Guard the scanner itself: it must see the eval configs the GPU recipes name."""
    names = named_files(RECIPES / "alpaca7b_mistake.yml")
    assert {"recipes/alpaca7b_mistake.eval.yml", "recipes/deepspeed_zero2.json"} <= names
    assert "alpaca7b_sft.yml" in names
    assert "outputs/alpaca7b_mistake/qlora" not in names
    assert resolve("recipes/nope.eval.yml").is_file() is False


def test_every_gpu_recipe_has_an_eval_config():
    for recipe in recipe_files():
        if recipe.name.endswith((".build.yml", ".eval.yml")):
            continue
        commands = header_commands(recipe)
        evals = [c for c in commands if c.startswith("python -m axolotl_mistake.evaluate --config")]
        named = re.findall(r"recipes/[\w.-]+\.eval\.yml", "\n".join(header(recipe)))
        assert evals or named, f"{recipe.name}: no evaluation config named"
        for name in named:
            assert (REPO / name).is_file(), name


# --- commands ------------------------------------------------------------------------------


@pytest.fixture
def clean_process(monkeypatch):
    """Axolotl's load_cfg sets env vars and registers plugins: undo both afterwards."""
    from axolotl.integrations.base import PluginManager

    env = dict(os.environ)
    manager = PluginManager.get_instance()
    saved = dict(manager.plugins)
    manager.plugins.clear()
    handlers = {name: list(logging.getLogger(name).handlers) for name in ("", "axolotl")}
    yield
    manager.plugins.clear()
    manager.plugins.update(saved)
    os.environ.clear()
    os.environ.update(env)
    for name, hs in handlers.items():
        logging.getLogger(name).handlers[:] = hs


def _args(cmd: str, base_model: Path) -> list[str]:
    for old, new in PLACEHOLDERS.items():
        cmd = cmd.replace(old, new)
    return shlex.split(cmd.replace(EMBEDDED, shlex.quote(str(base_model))))


def _exit_code(fn, argv: list[str]) -> int:
    try:
        code = fn(argv)
    except SystemExit as exc:
        code = exc.code
    return int(code or 0)


def check_build(args: list[str]) -> None:
    from dataset_builders.config import load_config

    cfg, config_file, want_help = load_config(args)
    assert not want_help
    if config_file:
        assert Path(config_file).is_file()


def _allowed_missing(problem_field: str, message: str) -> bool:
    """Inputs an evaluation config may name before they exist: an adapter a recipe trains (its
    output_dir), and the shared sample data when this checkout has none beside it."""
    outputs = set()
    import yaml

    for recipe in recipe_files():
        if not recipe.name.endswith((".build.yml", ".eval.yml")):
            out = yaml.safe_load(recipe.read_text(encoding="utf-8")).get("output_dir")
            if out:
                outputs.add(os.path.normpath(REPO / out))
    path = message.rsplit(": ", 1)[-1].strip()
    if problem_field.endswith("adapter"):
        return os.path.normpath(path) in outputs
    return not SHARED_DATA.is_dir() and Path(path).is_relative_to(SHARED_DATA)


def _eval_loader():
    """The module with the evaluation's public `load_config` (it moved from `config` to `inputs`
    in a refactor; whichever has it)."""
    import importlib

    for name in ("axolotl_mistake.evaluate.inputs", "axolotl_mistake.evaluate.config"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "load_config"):
            return module
    pytest.fail("no axolotl_mistake.evaluate module exposes load_config")


def check_eval_config(config: str, monkeypatch) -> None:
    eval_config = _eval_loader()
    if hasattr(eval_config, "missing_inputs"):  # checks local inputs exist; see _allowed_missing
        real = eval_config.missing_inputs

        def tolerant(cfg):
            return [
                (loc, msg)
                for loc, msg in real(cfg)
                if not _allowed_missing(".".join(map(str, loc)), msg)
            ]

        monkeypatch.setattr(eval_config, "missing_inputs", tolerant)
    cfg = eval_config.load_config(REPO / config)
    assert cfg.prompt_sets is not None


def check_evaluate(args: list[str], monkeypatch, tmp_path: Path) -> None:
    from axolotl_mistake.evaluate.__main__ import main

    if args[:1] == ["compare"]:
        # parse only: runs that do not exist yet must be reported as bad input (exit 2, no
        # argparse usage error, nothing written), not as an unknown option
        rest = args[1:]
        assert "--output" in rest, "compare needs --output"
        i = rest.index("--output")
        runs = [str(tmp_path / "missing" / run) for run in rest[:i]]
        runs += ["--output", str(tmp_path / "compare"), *rest[i + 2 :]]
        code = _exit_code(main, ["compare", *runs])
        assert code == 2, code
        assert not (tmp_path / "compare").exists()
        return
    assert args[0] == "--config" and len(args) == 2, args
    check_eval_config(args[1], monkeypatch)


def check_axolotl(args: list[str], tiny: Path, monkeypatch, tmp_path: Path) -> None:
    """Axolotl's click parser (no unknown option), then load_cfg of the recipe."""
    import axolotl.cli.config as axolotl_config
    from axolotl.cli.main import cli

    command = cli.get_command(None, args[0])
    assert command is not None, f"axolotl has no command {args[0]!r}"
    if len(args) == 1:  # prose naming the command (`axolotl train`), not a command line
        return
    ctx = command.make_context(args[0], list(args[1:]))
    assert not ctx.args, f"options axolotl {args[0]} does not know: {ctx.args}"
    recipe = REPO / ctx.params["config"]
    if not is_cpu(recipe):
        monkeypatch.setattr(axolotl_config, "gpu_capabilities", lambda: GPU_CAPABILITIES)
    check_recipe_config(recipe, tiny, ctx.params.get("deepspeed"), monkeypatch, tmp_path)


def check_recipe_config(recipe: Path, tiny: Path, deepspeed, monkeypatch, tmp_path) -> None:
    import json

    import axolotl.cli.config as axolotl_config

    monkeypatch.chdir(tmp_path)  # load_cfg writes output_dir/debug.log relative to the cwd
    cfg = axolotl_config.load_cfg(str(recipe), base_model=str(tiny))
    assert cfg.base_model == str(tiny)
    assert "axolotl_mistake.MistakeAnalysisPlugin" in (cfg.plugins or [])
    if deepspeed:  # the deepspeed package is not installed on CPU: check the JSON and schema
        from axolotl.utils.config import validate_config
        from axolotl.utils.dict import DictDefault

        json.loads((REPO / deepspeed).read_text())
        import yaml

        raw = DictDefault(yaml.safe_load(recipe.read_text(encoding="utf-8")))
        raw.deepspeed = str(REPO / deepspeed)
        raw.axolotl_config_path = str(recipe)
        axolotl_config.prepare_plugins(raw)
        validate_config(raw, capabilities=GPU_CAPABILITIES[0], env_capabilities=GPU_CAPABILITIES[1])


def check_accelerate(args: list[str], tiny, monkeypatch, tmp_path) -> None:
    from accelerate.commands.launch import launch_command_parser

    parsed = launch_command_parser().parse_args(args)
    assert parsed.module, "expected `-m axolotl.cli.<command>`"
    assert parsed.training_script.startswith("axolotl.cli."), parsed.training_script
    import importlib.util

    assert importlib.util.find_spec(parsed.training_script) is not None
    sub = parsed.training_script.rsplit(".", 1)[-1]
    check_axolotl([sub, *parsed.training_script_args], tiny, monkeypatch, tmp_path)


def check_pip(args: list[str]) -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for spec in args:
        m = re.fullmatch(r"axolotl-mistake\[([\w,]+)\]", spec)
        assert m, f"unexpected pip install argument {spec!r}"
        for extra in m.group(1).split(","):
            assert extra in project["optional-dependencies"], extra


def check_command(cmd: str, tiny: Path, monkeypatch, tmp_path: Path) -> None:
    args = _args(cmd, tiny)
    monkeypatch.chdir(REPO)  # the headers say: run from the repository root
    if args[:3] == ["python", "-m", "dataset_builders.build"]:
        check_build(args[3:])
    elif args[:3] == ["python", "-m", "dataset_builders.merge"]:
        from dataset_builders.merge import main

        assert _exit_code(main, ["--help"]) == 0
    elif args[:3] == ["python", "-m", "axolotl_mistake.models"]:
        from axolotl_mistake.models import main

        assert _exit_code(main, [*args[3:], "--help"]) == 0
    elif args[:3] == ["python", "-m", "axolotl_mistake.evaluate"]:
        check_evaluate(args[3:], monkeypatch, tmp_path)
    elif args[0] == "axolotl":
        check_axolotl(args[1:], tiny, monkeypatch, tmp_path)
    elif args[:2] == ["accelerate", "launch"]:
        check_accelerate(args[2:], tiny, monkeypatch, tmp_path)
    elif args[:2] == ["pip", "install"]:
        check_pip(args[2:])
    elif args[0] == "pytest":
        assert all((REPO / a).is_file() for a in args[1:] if not a.startswith("-")), args
    else:
        pytest.fail(f"no checker for this command (add one): {cmd}")


COMMANDS = all_commands()


def test_commands_were_found():
    programs = {cmd.split()[0] + " " + cmd.split()[1] for _, cmd in COMMANDS}
    assert {"axolotl train", "python -m", "accelerate launch"} <= programs
    assert len(COMMANDS) >= 40


@pytest.mark.parametrize("where,cmd", COMMANDS, ids=[f"{w}:{c[:60]}" for w, c in COMMANDS])
def test_command_parses(where, cmd, tiny_model_dir, clean_process, monkeypatch, tmp_path):
    check_command(cmd, tiny_model_dir, monkeypatch, tmp_path)


@pytest.mark.parametrize("build,flags", flag_spans(), ids=lambda x: getattr(x, "name", x))
def test_build_flag_spans_parse(build, flags, monkeypatch):
    """`--mistakes.mode origin` and friends, appended to the header's own build command."""
    monkeypatch.chdir(REPO)
    args = shlex.split(f" {flags} ".replace(" N ", " 2 ").replace("i/n", "0/2"))
    assert "..." not in args, f"{build.name}: incomplete command in a span: {flags}"
    check_build(["--config", f"recipes/{build.name}", *args])


def test_a_bad_command_is_caught(tiny_model_dir, clean_process, monkeypatch, tmp_path):
    """The checkers fail on what users would hit: a wrong flag, a missing file."""
    from axolotl_mistake.errors import InputError

    with pytest.raises(InputError):
        check_command(
            "python -m dataset_builders.build --config recipes/alpaca7b_mistake.build.yml "
            "--no_such.key 1",
            tiny_model_dir,
            monkeypatch,
            tmp_path,
        )
    with pytest.raises(AssertionError, match="does not know"):
        check_command(
            "axolotl train recipes/smollm2_135m_mistake.yml --lancher python",
            tiny_model_dir,
            monkeypatch,
            tmp_path,
        )
    import click

    with pytest.raises(click.UsageError):
        check_command("axolotl train recipes/nope.yml", tiny_model_dir, monkeypatch, tmp_path)
    with pytest.raises(InputError):
        check_command(
            "python -m axolotl_mistake.evaluate --config recipes/nope.eval.yml",
            tiny_model_dir,
            monkeypatch,
            tmp_path,
        )
