"""The house keeps its shape (DESIGN.md): the core never imports a plugin,
plugins never import each other, core layers import only downward, tools go
through the CLI, and no import circle exists anywhere (module-level and
deferred imports alike). Read from the sources: nothing is imported."""
from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: top-level package -> folder (setup.cfg's package_dir).
PACKAGES = {'perception': 'perception', 'perception_mim': 'plugins/mim',
            'perception_driving': 'plugins/driving',
            'perception_medical': 'plugins/medical'}

#: layers of the core, bottom up; a module imports its own layer or below.
#: Unlisted modules directly under ``perception`` are the foundation (0).
LAYERS = [
    ('foundation', ('perception', 'perception.errors', 'perception._lazy',
                    'perception.plugins', 'perception._registry',
                    'perception.registry', 'perception.fileio',
                    'perception.benchmarks')),
    ('structures', ('perception.structures', )),
    ('data, models', ('perception.data', 'perception.models',
                      'perception.sources')),
    ('engine', ('perception.engine', )),
    ('evaluation', ('perception.evaluation', )),
    ('visualization', ('perception.visualization', )),
    ('deploy', ('perception.deploy', )),
    ('apis', ('perception.apis', 'perception.demo')),
    ('cli', ('perception.cli', 'perception.__main__')),
]


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    path: str
    line: int

    def __str__(self) -> str:
        return f'{self.path}:{self.line}: {self.importer} -> {self.imported}'


def module_name(package: str, folder: Path, path: Path) -> str:
    parts = list(path.relative_to(folder).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join([package] + parts)


def scan(root: Path) -> tuple[set[str], list[Import]]:
    """Every module of the core and the plugins under ``root``, and every
    import between them (``from pkg import submodule`` resolves to the
    submodule)."""
    files = {}
    for package, folder in PACKAGES.items():
        for path in sorted((root / folder).rglob('*.py')):
            files[module_name(package, root / folder, path)] = path
    modules = set(files)
    imports = []
    for importer, path in files.items():
        tree = ast.parse(path.read_text(encoding='utf-8'), str(path))
        is_package = path.name == '__init__.py'
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    anchor = importer.split('.')
                    drop = node.level - 1 if is_package else node.level
                    anchor = anchor[:len(anchor) - drop]
                    base = '.'.join(anchor + ([base] if base else []))
                targets = [f'{base}.{a.name}' if f'{base}.{a.name}' in modules
                           else base for a in node.names]
            for target in targets:
                if target.split('.')[0] in PACKAGES:
                    imports.append(Import(importer, target,
                                          str(path.relative_to(root)),
                                          node.lineno))
    return modules, imports


def layer_of(module: str) -> int | None:
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + '.')) and \
                    len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def cycles(modules: set[str], imports: list[Import]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports:
        if imp.imported in modules and imp.imported != imp.importer:
            graph[imp.importer].add(imp.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(root: Path) -> list[str]:
    """Every broken rule of the house under ``root``, one line each."""
    modules, imports = scan(root)
    problems = []
    for imp in imports:
        src = imp.importer.split('.')[0]
        dst = imp.imported.split('.')[0]
        if src == 'perception' and dst != 'perception':
            problems.append(f'core imports a plugin: {imp}')
        elif src != 'perception' and dst not in ('perception', src):
            problems.append(f'plugin imports another plugin: {imp}')
        elif src == dst == 'perception':
            here, there = layer_of(imp.importer), layer_of(imp.imported)
            if there is not None and here is not None and there > here:
                problems.append(
                    f'upward import ({LAYERS[here][0]} -> '
                    f'{LAYERS[there][0]}): {imp}')
    for group in cycles(modules, imports):
        problems.append('import circle: ' + ' <-> '.join(group))
    for path in sorted((root / 'tools').glob('*.py')):
        tree = ast.parse(path.read_text(encoding='utf-8'))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith('perception') and \
                    node.module != 'perception.cli':
                problems.append(f'tools/{path.name}:{node.lineno}: tools go '
                                f'through perception.cli, not {node.module}')
    return problems


def test_every_core_module_has_a_layer():
    modules, _ = scan(ROOT)
    core = sorted(m for m in modules if m.split('.')[0] == 'perception')
    assert core and all(layer_of(m) is not None for m in core)


def test_the_house_keeps_its_shape():
    problems = violations(ROOT)
    assert not problems, '\n'.join(problems)


@pytest.fixture
def tree_copy(tmp_path):
    """The sources copied, to add a violating file to."""
    for folder in ('perception', 'plugins', 'tools'):
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns('__pycache__'))
    return tmp_path


@pytest.mark.parametrize('path, source, expected', [
    ('perception/data/offender.py', 'from perception.cli import main\n',
     'upward import (data, models -> cli)'),
    ('perception/models/offender.py',
     'def f():\n    from perception.engine import launch\n',
     'upward import (data, models -> engine)'),
    ('perception/engine/offender.py', 'import perception_medical\n',
     'core imports a plugin'),
    ('plugins/mim/offender.py', 'from perception_driving import x\n',
     'plugin imports another plugin'),
    ('perception/structures/offender.py',
     'from perception.structures import DataSample\n',
     'import circle'),
    ('tools/offender.py', 'from perception.engine.launch import run\n',
     'tools go through perception.cli'),
])
def test_a_violating_file_is_caught(tree_copy, path, source, expected):
    assert not violations(tree_copy)
    target = tree_copy / path
    target.write_text(source)
    if 'circle' in expected:  # the package's __init__ imports it back
        init = target.parent / '__init__.py'
        init.write_text(init.read_text() + '\nfrom perception.structures '
                        'import offender  # noqa\n')
    found = violations(tree_copy)
    assert any(expected in p and 'offender' in p for p in found), found


def test_registry_locations_name_where_the_classes_live():
    """Each registry's ``locations`` are exactly the core packages whose
    classes it holds: every core class lives under one, and every location
    holds one (checked in a fresh process with no plugin loaded)."""
    import subprocess
    import sys
    code = '''
import perception.registry as r
problems = []
for reg in r.ALL_REGISTRIES:
    reg.import_from_location()
    locations = list(reg._locations)
    core = {n: o.__module__ for n, o in reg.module_dict.items()
            if o.__module__.split('.')[0] == 'perception'}
    for name, module in core.items():
        if not any(module == l or module.startswith(l + '.')
                   for l in locations):
            problems.append(f'{reg.name}: {name} ({module}) not under '
                            f'{locations}')
    for l in locations:
        if not any(m == l or m.startswith(l + '.') for m in core.values()):
            problems.append(f'{reg.name}: location {l} holds nothing')
assert not problems, chr(10).join(problems)
'''
    env = dict(__import__('os').environ,
               PERCEPTION_DISABLE_PLUGIN_AUTOLOAD='1')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
