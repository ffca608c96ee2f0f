"""The dependency directions the folders state, enforced by walking every import of the project
(``import``/``from … import`` anywhere in a file, inside functions too) with :mod:`ast`:

* a source (``include/sources``) never reaches the warehouse, the pipeline, erasure or staging;
* ``include`` never imports the DAGs, the sandboxes, the scripts, the benchmarks or the tests;
* the feed service never reaches Airflow nor a source: it is its own process in production;
* the warehouse never reaches a source.

"Reaches" is transitive over the project's own modules: importing ``include.config`` counts as
importing whatever ``include.config`` imports (and importing ``a.b.c`` runs ``a`` and ``a.b``
first). A failure names the file, the chain of modules and the offending import with its line.
"""

from __future__ import annotations

import ast
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {"data", "node_modules", "__pycache__"}  # and every hidden folder (.venv, .airflow, .git…)


@dataclass(frozen=True)
class Rule:
    scope: str  # the modules the rule binds: this one and those below it
    forbidden: tuple[str, ...]  # module names (and those below them) it must never reach
    why: str


RULES = (
    Rule(
        "include.sources",
        ("include.warehouse", "include.pipeline", "include.erasure", "include.staging"),
        "a source only fetches and normalises; the pipeline writes what it returns",
    ),
    Rule(
        "include",
        ("dags", "sandbox", "scripts", "tests", "bench"),
        "production code runs without the DAG files, the sandboxes and the tooling around it",
    ),
    Rule(
        "include.feed_service",
        ("airflow", "include.sources"),
        "the feed service is its own process in production, without Airflow or the source clients",
    ),
    Rule("include.warehouse", ("include.sources",), "the warehouse stores normalised rows; it knows no source"),
)


@dataclass(frozen=True)
class Import:
    name: str  # absolute module name
    line: int


def project_modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for every .py file of the tree (a package is its __init__.py)."""
    modules = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        for name in sorted(f for f in files if f.endswith(".py")):
            path = Path(folder) / name
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if parts:
                modules[".".join(parts)] = path
    return modules


def imports_of(module: str, path: Path) -> list[Import]:
    """Every import in the file, wherever it stands, as absolute module names. ``from a import b``
    yields ``a`` and ``a.b`` (b may be a submodule)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if package else []
                parent = ".".join(base + ([node.module] if node.module else []))
            else:
                parent = node.module or ""
            found.append(Import(parent, node.lineno))
            found += [Import(f"{parent}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*"]
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _loaded_by(name: str, modules: dict[str, Path]) -> list[str]:
    """The project modules that importing `name` runs: its packages, then itself."""
    parts = name.split(".")
    return [m for m in (".".join(parts[:i]) for i in range(1, len(parts) + 1)) if m in modules]


def violations(root: Path, rules=RULES) -> list[str]:
    """One line per forbidden import statement a rule's modules reach, with the chain to it."""
    modules = project_modules(root)
    imports = {m: imports_of(m, p) for m, p in modules.items()}
    problems = []
    for rule in rules:
        forbidden = rule.forbidden
        if rule.scope == "include":  # a DAG file is also imported by its bare name
            forbidden += tuple(p.stem for p in (root / "dags").glob("*.py"))
        reported = set()
        for start in sorted(m for m in modules if _within(m, rule.scope)):
            # breadth first over the project's modules, with the chain that reached each
            chains, queue = {start: [start]}, deque([start])
            while queue:
                module = queue.popleft()
                # a module the rule binds answers for its own imports, without a chain
                own = module == start or not _within(module, rule.scope)
                for imp in imports[module]:
                    bad = next((f for f in forbidden if _within(imp.name, f)), None)
                    if bad and own and (module, imp.line) not in reported:
                        reported.add((module, imp.line))
                        where = f"{modules[module].relative_to(root)}:{imp.line}"
                        reach = "" if module == start else f", reached from {' -> '.join(chains[module])}"
                        problems.append(
                            f"{where}: imports {imp.name}{reach}; {rule.scope} must not reach {bad}: {rule.why}"
                        )
                    for reached in _loaded_by(imp.name, modules):
                        if reached not in chains and not any(_within(reached, f) for f in forbidden):
                            chains[reached] = chains[module] + [reached]
                            queue.append(reached)
    return problems


def test_the_project_keeps_its_dependency_directions():
    problems = violations(ROOT)
    assert not problems, "dependency directions broken:\n" + "\n".join(problems)


def test_the_walk_sees_the_real_tree():
    """The check above passes for the right reason: it reads the project and follows chains."""
    modules = project_modules(ROOT)
    assert {"include.feed_service.app", "include.sources.giftpro", "include.warehouse", "sandbox.giftpro"} <= set(
        modules
    )
    assert not any(".venv" in str(p) for p in modules.values())
    names = {i.name for i in imports_of("include.feed_service.app", modules["include.feed_service.app"])}
    assert {"include.warehouse", "include.warehouse.feed_reads", "include.config"} <= names


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"include/__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CLEAN = {
    "include/money.py": "import decimal\n",
    "include/sources/__init__.py": "",
    "include/sources/giftpro.py": "from include.money import decimal\n",
    "include/warehouse/__init__.py": "from include.warehouse.handle import Warehouse\n",
    "include/warehouse/handle.py": "from include import money\n",
    "include/feed_service/app.py": "from include.warehouse import Warehouse\n",
    "dags/feed.py": "from include.sources import giftpro\nimport airflow\n",
    "sandbox/giftpro.py": "from include.sources.giftpro import x\n",
    ".venv/lib/airflow.py": "from include.warehouse import handle\nimport sandbox\n",
}


def test_a_clean_tree_passes(tmp_path):
    assert violations(tree(tmp_path, CLEAN)) == []


def test_a_source_importing_the_warehouse_inside_a_function_is_named(tmp_path):
    bad = {"include/sources/giftpro.py": "import json\n\n\ndef load():\n    from include.warehouse import handle\n"}
    [problem] = violations(tree(tmp_path, {**CLEAN, **bad}))
    assert problem.startswith("include/sources/giftpro.py:5: imports include.warehouse;")
    assert "include.sources must not reach include.warehouse" in problem


def test_relative_imports_are_resolved(tmp_path):
    bad = {"include/warehouse/handle.py": "from ..sources import giftpro\n"}
    problems = violations(tree(tmp_path, {**CLEAN, **bad}))
    assert any(p.startswith("include/warehouse/handle.py:1: imports include.sources;") for p in problems), problems


def test_the_feed_service_reaching_airflow_through_the_project_is_named_with_the_chain(tmp_path):
    bad = {"include/money.py": "import decimal\n\n\ndef hook():\n    import airflow.sdk\n"}
    problems = violations(tree(tmp_path, {**CLEAN, **bad}))
    assert (
        "include/money.py:5: imports airflow.sdk, reached from include.feed_service.app -> include.warehouse"
        " -> include.warehouse.handle -> include.money; include.feed_service must not reach airflow"
    ) in "\n".join(problems)


def test_include_importing_the_sandbox_or_a_dag_file_is_named(tmp_path):
    bad = {"include/money.py": "import decimal\nfrom sandbox.giftpro import GiftProStore\nimport feed\n"}
    problems = violations(tree(tmp_path, {**CLEAN, **bad}))
    assert any(p.startswith("include/money.py:2: imports sandbox.giftpro;") for p in problems), problems
    assert any(p.startswith("include/money.py:3: imports feed;") for p in problems), problems
