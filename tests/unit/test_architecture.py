"""The layering, read from the source: which package may import which, no import cycle among
chatstream's modules, and every module importable on its own in a fresh interpreter.

The gateway and the worker know only ``shared/``; ``shared/`` knows neither; the launcher alone
composes the two (``make run``); the ``chatstream`` command knows only ``shared/``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each package and the packages its modules may import.
MAY_IMPORT = {
    "shared": {"shared"},
    "gateway": {"gateway", "shared"},
    "worker": {"worker", "shared"},
    "cli": {"cli", "shared"},
    "launcher": {"launcher", "gateway", "worker", "shared"},
}
IMPORT_TIMEOUT_S = 60.0


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by dotted name (a package by its own)."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` names, with a relative one resolved."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, node.module] if node.module else base)


def imported_names(module: str, path: Path, node: ast.AST) -> Iterator[str]:
    """The dotted names an import statement brings in: ``from a import b`` gives ``a`` and
    ``a.b`` (``b`` may be a module)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom):
        source = _absolute(module, path.name == "__init__.py", node)
        yield source
        for alias in node.names:
            yield f"{source}.{alias.name}"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports that run when the module is imported: not those inside functions, nor those
    under ``if TYPE_CHECKING:``."""
    for statement in body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            yield statement
        elif isinstance(statement, ast.If):
            if not _is_type_checking(statement.test):
                yield from module_level_imports(statement.body)
            yield from module_level_imports(statement.orelse)
        elif isinstance(statement, ast.Try):
            for block in (statement.body, statement.orelse, statement.finalbody):
                yield from module_level_imports(block)
            for handler in statement.handlers:
                yield from module_level_imports(handler.body)
        elif isinstance(statement, ast.With | ast.ClassDef):
            yield from module_level_imports(statement.body)


def layering_violations(root: Path) -> list[str]:
    """Every import, anywhere in a module (inside functions too), of a package its package may
    not import."""
    violations = []
    for module, path in module_files(root, MAY_IMPORT).items():
        allowed = MAY_IMPORT[module.split(".")[0]]
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name in imported_names(module, path, node):
                top = name.split(".")[0]
                if top in MAY_IMPORT and top not in allowed:
                    violations.append(f"{module} (line {node.lineno}) imports {name}")
                    break
    return violations


def import_graph(root: Path) -> dict[str, set[str]]:
    """Each module and the project modules its module-level imports load. A module's own parent
    packages are left out: the import system has loaded them before the module runs."""
    modules = module_files(root, MAY_IMPORT)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        own_parents = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        targets: set[str] = set()
        for node in module_level_imports(tree.body):
            for name in imported_names(module, path, node):
                parts = name.split(".")
                # Importing a.b.c loads a and a.b first.
                targets |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        graph[module] = (targets & modules.keys()) - own_parents - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it with the first repeated at the end."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(module: str) -> list[str] | None:
        path.append(module)
        on_path.add(module)
        for target in sorted(graph[module]):
            if target in on_path:
                return [*path[path.index(target) :], target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(module)
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_each_package_imports_only_what_its_layer_allows() -> None:
    assert layering_violations(ROOT) == []


def test_no_import_cycle_among_the_modules() -> None:
    graph = import_graph(ROOT)
    assert {"gateway.app", "worker.worker", "shared.settings", "launcher.embedded"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def import_alone(module: str, root: Path = ROOT) -> str | None:
    """None if ``module`` imports in a fresh interpreter, else what went wrong."""
    # The project comes first on the path: a test's small project shadows the installed one.
    code = f"import sys; sys.path.insert(0, {str(root)!r}); import {module}"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_S,
        check=False,
    )
    if result.returncode == 0:
        return None
    return f"{module}: {result.stderr.strip().splitlines()[-1]}"


# About half a minute on two idle cores; a machine busy with other work takes several times that.
@pytest.mark.timeout(600)
def test_every_module_imports_on_its_own_in_a_fresh_interpreter() -> None:
    modules = sorted(module_files(ROOT, MAY_IMPORT))
    # The imports are CPU-bound: one per core keeps the cores busy without crowding them.
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        failures = [failure for failure in pool.map(import_alone, modules) if failure]
    assert failures == []


# The checks above, shown to fail on a small project that breaks each rule.


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _project(root: Path, files: dict[str, str]) -> Path:
    for package in MAY_IMPORT:
        _write(root, {f"{package}/__init__.py": ""})
    _write(root, files)
    return root


def test_a_worker_import_in_the_gateway_is_found_even_inside_a_function(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "gateway/app.py": "def run():\n    from worker.worker import Worker\n",
            "shared/names.py": "import gateway.app\n",
            "launcher/embedded.py": "import gateway.app\nimport worker\n",
        },
    )
    assert sorted(layering_violations(root)) == [
        "gateway.app (line 2) imports worker.worker",
        "shared.names (line 1) imports gateway.app",
    ]


CYCLIC = {
    "gateway/appkeys.py": "from gateway.stalls import StallBreaker\n",
    "gateway/stalls.py": "from gateway import appkeys\nclass StallBreaker: ...\n",
}


def test_an_import_cycle_is_reported_along_its_modules(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            **CYCLIC,
            "gateway/relay.py": "from gateway import stalls\n",
            # Only for the type checker, or only when called: no cycle.
            "gateway/routes.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from gateway import relay\n"
            ),
            "gateway/fanout.py": "def f():\n    from gateway import routes\n",
        },
    )
    graph = import_graph(root)
    assert graph["gateway.routes"] == set() and graph["gateway.fanout"] == set()
    assert find_cycle(graph) == ["gateway.appkeys", "gateway.stalls", "gateway.appkeys"]


def test_a_module_that_cannot_import_alone_is_named(tmp_path: Path) -> None:
    root = _project(tmp_path, CYCLIC)
    assert import_alone("gateway.appkeys", root) is None
    failure = import_alone("gateway.stalls", root)
    assert failure is not None
    assert failure.startswith("gateway.stalls: ImportError: cannot import name 'StallBreaker'")
