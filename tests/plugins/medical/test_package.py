"""The package's shape: cheap to import, every public name resolves,
``register()`` registers every class, and the modules keep their imports
one way (no private cross-module imports, no circles)."""
import ast
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import perception_medical

PACKAGE = Path(perception_medical.__file__).parent
SUBPACKAGES = ('dicom', 'datasets', 'deid', 'synth', 'lesions')
PUBLIC = ('read_dicom', 'DicomReadError', 'load_series', 'Volume',
          'SeriesError', 'deidentify', 'DeidCommand', 'FROCMetric', 'froc',
          'LesionDetectionDataset', 'DicomSliceDataset', 'write_ct_study',
          'planted_phi', 'SynthCtCommand', 'WINDOW_PRESETS', 'ApplyWindows',
          'header_windows', 'window_preset', 'window_presets',
          'LesionBalancedSampler', 'read_metaimage', 'LesionFindings',
          'predict_volume', 'merge_detections', 'CTOrganSegDataset',
          'read_seg', 'SeriesGrid', 'SegAlignmentError', 'write_seg',
          'write_predicted_seg')


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120)


def test_package_and_command_modules_import_nothing_heavy():
    result = _python("""
        import sys
        import perception_medical, perception_medical.commands
        for sub in ('dicom', 'datasets', 'deid', 'synth', 'lesions'):
            __import__(f'perception_medical.{sub}')
        heavy = [m for m in ('torch', 'pydicom', 'cv2', 'perception.data')
                 if m in sys.modules]
        assert not heavy, heavy
        from perception.registry import COMMANDS
        names = set(COMMANDS.module_dict)
        assert {'deid', 'synth-ct'} <= names, names
        print('ok')
    """)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'ok' in result.stdout


def test_public_names_resolve_to_the_objects_they_name():
    assert set(PUBLIC) == set(perception_medical.__all__)
    perception_medical.register()  # imports every submodule
    for name in PUBLIC:
        obj = getattr(perception_medical, name)
        if not isinstance(obj, (dict, tuple)):
            assert getattr(obj, '__name__', name) == name, name
    # a submodule imported under a public name would shadow the function
    assert callable(perception_medical.froc)
    from perception_medical import SynthCtCommand, froc
    assert froc.__module__ == 'perception_medical.evaluation'
    assert SynthCtCommand.name == 'synth-ct'
    with pytest.raises(AttributeError, match='no attribute'):
        perception_medical.no_such_name  # noqa: B018


@pytest.mark.parametrize('sub', SUBPACKAGES)
def test_subpackage_exports_resolve(sub):
    package = importlib.import_module(f'perception_medical.{sub}')
    assert package.__all__ and sorted(dir(package)) == package.__all__
    for name in package.__all__:
        assert getattr(package, name) is not None, f'{sub}.{name}'


def test_register_fills_the_core_registries():
    from perception.registry import (
        BENCHMARKS,
        COMMANDS,
        DATA_SAMPLERS,
        DATASETS,
        METRICS,
        POSTPROCESSORS,
        SOURCES,
        TRANSFORMS,
    )
    perception_medical.register()
    expected = {DATASETS: ('DicomSliceDataset', 'LesionDetectionDataset',
                           'CTOrganSegDataset', 'LesionSliceClassificationDataset'),
                TRANSFORMS: ('LoadCTSlices', 'ApplyWindows', 'LoadCTSegMap'),
                METRICS: ('FROCMetric', ), SOURCES: ('DicomOpener', ),
                POSTPROCESSORS: ('LesionFindings', ),
                DATA_SAMPLERS: ('LesionBalancedSampler', ),
                COMMANDS: ('deid', 'synth-ct'), BENCHMARKS: ('dicom', )}
    for registry, names in expected.items():
        for name in names:
            assert name in registry.module_dict, f'{name} in {registry.name}'


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob('*.py')):
        parts = path.relative_to(PACKAGE).with_suffix('').parts
        if parts[-1] == '__init__':
            parts = parts[:-1]
        name = '.'.join(('perception_medical', ) + parts)
        out[name] = ast.parse(path.read_text(), str(path))
    return out


def _imports(name: str, tree: ast.Module, modules) -> list[tuple[str, str]]:
    """(imported plugin module, imported name or '') of every import,
    module level or inside functions; relative imports resolved."""
    is_package = name in modules and (PACKAGE / Path(
        *name.split('.')[1:]) / '__init__.py').exists()
    base = name.split('.') if is_package else name.split('.')[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, '') for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ''
            if node.level:
                up = base[:len(base) - node.level + 1]
                source = '.'.join(up + ([source] if source else []))
            for alias in node.names:
                child = f'{source}.{alias.name}'
                out.append((child, '') if child in modules else
                           (source, alias.name))
    return [(m, n) for m, n in out if m.startswith('perception_medical')]


def test_no_private_cross_module_imports():
    modules = _modules()
    offenders = []
    for name, tree in modules.items():
        for module, imported in _imports(name, tree, modules):
            private_module = any(p.startswith('_') for p in module.split('.'))
            if private_module or imported.startswith('_'):
                offenders.append(f'{name} imports {module} {imported}')
    assert not offenders, offenders


def test_no_import_circles_inside_the_plugin():
    modules = _modules()
    graph = {}
    for name, tree in modules.items():
        graph[name] = set()
        for module, _ in _imports(name, tree, modules):
            while module not in modules and '.' in module:
                module = module.rsplit('.', 1)[0]
            # a package's __init__ importing its own modules is no circle
            if module != name and not module.startswith(name + '.'):
                graph[name].add(module)
    done, path = set(), []

    def visit(node):
        if node in path:
            cycle = path[path.index(node):] + [node]
            pytest.fail('import circle: ' + ' -> '.join(cycle))
        if node in done:
            return
        path.append(node)
        for child in sorted(graph.get(node, ())):
            visit(child)
        path.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)
