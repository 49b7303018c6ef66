"""The packages import only the layers below them: protocol -> service -> jobs -> store,
storage -> ml. (`ml` is the ML core: pure functions and no I/O of the service's.)"""

import ast
from pathlib import Path

import openaml

SOURCE = Path(openaml.__file__).parent
# package -> the openaml packages (and top-level modules) it may import besides its own
ALLOWED = {
    "ml": set(),
    "store": set(),
    "storage": {"ml", "extras"},
    "jobs": {"ml", "store", "storage"},
    "protocol": {"errors"},
}


def _imports(package: Path) -> dict[str, set[str]]:
    """Module (relative path) -> the openaml packages or modules it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level
                       else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            names |= {m.split(".")[1] for m in modules if m.startswith("openaml.")}
        found[str(path.relative_to(SOURCE))] = names
    return found


def test_each_layer_imports_only_the_layers_below_it():
    wrong = {module: sorted(names - allowed - {package})
             for package, allowed in ALLOWED.items()
             for module, names in _imports(SOURCE / package).items()
             if names - allowed - {package}}
    assert wrong == {}


def test_the_check_sees_imports():
    """The check finds what it looks for (jobs import ml; ml's modules import each other)."""
    assert any("ml" in names for names in _imports(SOURCE / "jobs").values())
    assert any(names == {"ml"} for names in _imports(SOURCE / "ml").values())


def test_the_ml_core_asks_the_os_for_no_cpus_and_keeps_no_threads():
    """Threads are the caller's (ml/execution.Execution): no CPU count or affinity is read,
    and no executor lives at module level, where nobody shuts it down."""
    found = []
    for path in sorted((SOURCE / "ml").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("sched_getaffinity", "cpu_count"):
                found.append(f"{path.name}: {node.attr}")
        for statement in tree.body:  # module level only
            for node in ast.walk(statement):
                if (isinstance(statement, (ast.Assign, ast.AnnAssign, ast.Expr)) and isinstance(node, ast.Call)
                        and getattr(node.func, "id", getattr(node.func, "attr", "")).endswith("Executor")):
                    found.append(f"{path.name}: a module-level executor")
    assert found == []


def _attribute_reads(attribute: str) -> set[str]:
    """Modules (relative paths) that read `<something>.<attribute>`, loggers aside."""
    return {str(path.relative_to(SOURCE)) for path in sorted(SOURCE.rglob("*.py"))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Attribute) and node.attr == attribute
            and getattr(node.value, "id", None) not in ("log", "logging", "urllib")}


def test_records_are_read_through_their_typed_documents():
    """A record's info is read and written by jobs/record_info.py alone (service/migration.py
    reads the layout before it; the store keeps it); its Create request, in PascalCase, by the
    service alone: jobs read specs."""
    assert _attribute_reads("info") - {"jobs/record_info.py", "service/migration.py", "store/database.py"} == set()
    assert {m for m in _attribute_reads("request") if not m.startswith("service/")} == set()
