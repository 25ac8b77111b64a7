"""The README is a front door: the two commands first, a quick start that runs, a headline table equal to what the
results files say, every CLI verb listed, and links that resolve inside the repository."""

import re
from pathlib import Path

from hotswap_harness.report.headline import headline_markdown

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]


def test_readme_is_a_front_door_not_a_manual():
    assert len(README.read_text().splitlines()) <= 230


def test_headline_table_is_what_the_results_files_say():
    table = headline_markdown(ROOT / "results")
    assert table in README.read_text(), ("the README's headline table differs from the results files: paste the "
                                         "output of 'python -m hotswap_harness.report.headline'")


def test_every_cli_verb_is_listed():
    from typer.main import get_command

    from hotswap.cli import app

    text = README.read_text()
    table = text[text.index("## Command line"):text.index("## Documentation")]
    first_cells = re.findall(r"^\| (.*?) \|", table, re.M)
    listed = set(re.findall(r"[\w-]+", " ".join(" ".join(re.findall(r"`([^`]+)`", cell)) for cell in first_cells)))
    group = get_command(app)
    for name, command in group.commands.items():
        assert name in listed, f"hotswap {name} is missing from the README's command table"
        for sub in getattr(command, "commands", {}):
            assert sub in listed, f"hotswap {name} {sub} is missing from the README's command table"


def test_links_resolve_inside_the_repository():
    text = README.read_text()
    for target in re.findall(r"\]\(([^)#\s]+)", text):
        if target.startswith("https://"):
            assert re.match(r"https://arxiv\.org/abs/\d{4}\.\d{5}$", target), f"link leaves the repository: {target}"
        else:
            assert (ROOT / target).exists(), f"README links to a missing file: {target}"


def test_quick_start_is_the_one_the_docs_run():
    """The README's quick start is the start of docs/getting-started.md (split there into several blocks), which
    tests/docs runs and checks: every code line of it (comments become prose there), in order, among the page's
    Python lines."""
    code = re.search(r"## Quick start\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    page = (ROOT / "docs" / "getting-started.md").read_text()
    page_lines = iter("".join(re.findall(r"```python\n(.*?)```", page, re.S)).splitlines())
    for line in (ln for ln in code.splitlines() if ln.strip() and not ln.lstrip().startswith("#")):
        assert any(line == other for other in page_lines), f"not on the page (in this order): {line}"
