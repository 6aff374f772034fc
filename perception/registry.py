"""Registries of perception, children of mmengine's roots (scope
``perception``), in the habit of ``mmpretrain/registry.py``.

``locations`` name exactly the core packages whose classes a registry holds
(tests/core/test_layers.py checks it); a registry the core adds nothing to
has none, and plugins fill it.

Backbones, necks, heads and whole models share ``MODELS``. Plugins register
into these registries when imported; they are discovered through the
``perception.plugins`` entry-point group on the first lookup, so
``MODELS.build(cfg)`` needs no other import.
"""
import re

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import INFERENCERS as MMENGINE_INFERENCERS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import STRATEGIES as MMENGINE_STRATEGIES
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

from perception._registry import PerceptionRegistry, UnknownTypeError, unknown_type_message

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS',
    'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS',
    'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'BATCH_AUGMENTS', 'TASK_UTILS',
    'METRICS', 'EVALUATOR', 'VISUALIZERS', 'VISBACKENDS', 'INFERENCERS',
    'FUNCTIONS', 'STRATEGIES', 'EXPORTERS', 'BACKENDS', 'POSTPROCESSORS', 'SOURCES',
    'COMMANDS', 'BENCHMARKS', 'DEMOS', 'ALL_REGISTRIES',
    'translate_unknown_type'
]


def _child(name: str, parent: Registry, locations: list[str]) -> Registry:
    return PerceptionRegistry(name, parent=parent, scope='perception',
                              locations=locations)


#######################################################################
#                         perception.engine                           #
#######################################################################

# Runners (mmengine's Runner through perception's builder).
RUNNERS = _child('runner', MMENGINE_RUNNERS, [])
# Runner constructors that define how to initialize runners.
RUNNER_CONSTRUCTORS = _child('runner constructor',
                             MMENGINE_RUNNER_CONSTRUCTORS, [])
# Loops which define the training or test process, like epoch-based loops.
LOOPS = _child('loop', MMENGINE_LOOPS, [])
# Hooks to add extra functions during running, like checkpoint-safe state
# (engine) and pictures of predictions (visualization).
HOOKS = _child('hook', MMENGINE_HOOKS,
               ['perception.engine', 'perception.visualization'])
# Log processors which define the format of the runtime logs.
LOG_PROCESSORS = _child('log processor', MMENGINE_LOG_PROCESSORS, [])
# Optimizers to optimize the model weights.
OPTIMIZERS = _child('optimizer', MMENGINE_OPTIMIZERS, [])
# Optimizer wrappers, like the CPU bf16 AMP wrapper.
OPTIM_WRAPPERS = _child('optim_wrapper', MMENGINE_OPTIM_WRAPPERS,
                        ['perception.engine'])
# Optimizer wrapper constructors, like layer-wise lr decay.
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
                                    ['perception.engine'])
# Parameter schedulers to adjust optimizer hyper-parameters.
PARAM_SCHEDULERS = _child('parameter scheduler', MMENGINE_PARAM_SCHEDULERS, [])
# Training strategies (DDP, FSDP...).
STRATEGIES = _child('strategy', MMENGINE_STRATEGIES, [])

#######################################################################
#                          perception.data                            #
#######################################################################

# Datasets: ImageFolderDataset in the core; plugins add driving/CT formats.
DATASETS = _child('dataset', MMENGINE_DATASETS, ['perception.data'])
# Samplers to sample the dataset.
DATA_SAMPLERS = _child('data sampler', MMENGINE_DATA_SAMPLERS, [])
# Transforms to process samples from the dataset (explicit, dict-based).
TRANSFORMS = _child('transform', MMENGINE_TRANSFORMS, ['perception.data'])

#######################################################################
#                         perception.models                           #
#######################################################################

# Backbones, necks, heads, data preprocessors and whole models.
MODELS = _child('model', MMENGINE_MODELS, ['perception.models'])
# Model wrappers like 'MMDistributedDataParallel', and FSDP2's
# 'FullyShardedWrapper' (engine).
MODEL_WRAPPERS = _child('model_wrapper', MMENGINE_MODEL_WRAPPERS,
                        ['perception.engine'])
# Weight initialization methods like uniform, xavier.
WEIGHT_INITIALIZERS = _child('weight initializer',
                             MMENGINE_WEIGHT_INITIALIZERS, [])
# Batch augmentations like Mixup and CutMix.
BATCH_AUGMENTS = PerceptionRegistry('batch augment', scope='perception',
                                    locations=[])
# Task-specific modules like anchor generators and box coders.
TASK_UTILS = _child('task util', MMENGINE_TASK_UTILS,
                    ['perception.models.task_modules'])

#######################################################################
#                       perception.evaluation                         #
#######################################################################

# Metrics to evaluate the model prediction results.
METRICS = _child('metric', MMENGINE_METRICS,
                 ['perception.evaluation', 'perception.engine'])
# Evaluators to define the evaluation process.
EVALUATOR = _child('evaluator', MMENGINE_EVALUATOR, [])

#######################################################################
#                      perception.visualization                       #
#######################################################################

# Visualizers to display task-specific results.
VISUALIZERS = _child('visualizer', MMENGINE_VISUALIZERS, [])
# Backends to save the visualization results, like TensorBoard, WandB.
VISBACKENDS = _child('vis_backend', MMENGINE_VISBACKENDS, [])
# Inferencers (high-level prediction APIs).
INFERENCERS = _child('inferencer', MMENGINE_INFERENCERS, [])
# Functions, like collate functions.
FUNCTIONS = _child('function', MMENGINE_FUNCTIONS, [])

#######################################################################
#                    perception's own registries                      #
#######################################################################

# Exporters turning a trained model into a deployable file (ONNX, engines).
EXPORTERS = PerceptionRegistry('exporter', scope='perception',
                               locations=[])
# Inference backends (ONNX Runtime, TensorRT) that run exported models.
BACKENDS = PerceptionRegistry('backend', scope='perception',
                              locations=['perception.deploy.backends',
                                         'perception.deploy.tensorrt.runtime'])
# Post-processing of a model's predictions that a plugin adds for its
# domain (e.g. slice detections of a CT series merged into 3D findings), so
# `perception infer` uses it without importing the plugin.
POSTPROCESSORS = PerceptionRegistry('postprocessor', scope='perception',
                                    locations=[])
# Source openers used by open_source(): files, folders, streams, DICOM.
SOURCES = PerceptionRegistry('source', scope='perception',
                             locations=['perception.sources'])
# Subcommands of the `perception` command added by the core and plugins.
#: the core's command modules; they import no torch, so `perception --help`
#: imports them directly (perception.cli) without loading any plugin.
CORE_COMMAND_MODULES = ('perception.cli.runs', 'perception.cli.listing',
                        'perception.cli.benchmark', 'perception.cli.data',
                        'perception.cli.export', 'perception.cli.infer',
                        'perception.cli.deploy',
                        'perception.cli.demo')
COMMANDS = PerceptionRegistry('command', scope='perception',
                              locations=list(CORE_COMMAND_MODULES))
# Benchmarks run by `perception benchmark NAME`.
BENCHMARKS = PerceptionRegistry('benchmark', scope='perception',
                                locations=['perception.cli.benchmark',
                                           'perception.cli.label_efficiency',
                                           'perception.engine',
                                           'perception.deploy.latency'])
# Parts of `perception demo` (driving, medical...): each plugin registers
# its part; the core orchestrates them and writes the report.
DEMOS = PerceptionRegistry('demo part', scope='perception', locations=[])

ALL_REGISTRIES = [
    RUNNERS, RUNNER_CONSTRUCTORS, LOOPS, HOOKS, LOG_PROCESSORS, OPTIMIZERS,
    OPTIM_WRAPPERS, OPTIM_WRAPPER_CONSTRUCTORS, PARAM_SCHEDULERS, STRATEGIES,
    DATASETS, DATA_SAMPLERS, TRANSFORMS, MODELS, MODEL_WRAPPERS,
    WEIGHT_INITIALIZERS, BATCH_AUGMENTS, TASK_UTILS, METRICS, EVALUATOR,
    VISUALIZERS, VISBACKENDS, INFERENCERS, FUNCTIONS, EXPORTERS, BACKENDS,
    POSTPROCESSORS, SOURCES, COMMANDS, BENCHMARKS, DEMOS
]

_MMENGINE_MISSING = re.compile(
    r"(?P<name>[\w.]+) is not in the (?P<scope>[\w]+)::(?P<registry>[\w ]+) "
    r"registry")


def translate_unknown_type(exc: BaseException) -> UnknownTypeError | None:
    """Turn mmengine's terse "X is not in the scope::name registry" KeyError
    (raised when the Runner builds through mmengine's root registries) into
    an :class:`UnknownTypeError` with close matches and plugins."""
    match = _MMENGINE_MISSING.search(str(exc))
    if match is None:
        return None
    for candidate in ALL_REGISTRIES:
        if candidate.name == match['registry']:
            return UnknownTypeError(
                unknown_type_message(candidate, match['name']))
    return None
