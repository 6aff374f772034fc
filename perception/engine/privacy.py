"""Keep identifying values out of everything a run writes.

A config opts in with a ``privacy`` section::

    privacy = dict(
        redact_keys=('data_root', 'data_prefix', 'ann_file'),  # config keys
        redact_values=(),  # more literal strings (e.g. an archive's name)
    )

The values found under ``redact_keys`` (anywhere in the config, nested
dicts and lists included) and the ``redact_values`` are then replaced by a
token ``<redacted:0123abcd>`` in the config the runner logs, dumps into the
work dir, hands to visualizers (TensorBoard's config text) and embeds in
checkpoints (``meta['cfg']``); log records are filtered the same way, with
everything a redacted path is a prefix of (``/data/DOE_JOHN/...``). The
datasets still receive the real values: only the runner's *shown* config
(``runner.cfg``) is redacted. Tokens use a random per-process salt, so they
cannot be looked up from a guessed name.

Components can also declare which of their arguments identify people, so
that a config using them is guarded without a ``privacy`` section: a class
attribute ``private_args = ('data_root', ...)`` on a registered dataset, or
``register_private_args('TypeName', ('data_root', ...))`` from the plugin
that knows the type (the medical plugin does so for its CT datasets).
``privacy = dict(enabled=False)`` turns the guard off for a config.

Writers that name outputs after samples (prediction pictures, ``perception
browse``) use :func:`sample_name` / :func:`sample_caption`: the file's own
name unguarded, a series UID digest and slice index (or a digest) when the
path is private; code outside the runner finds the current run's redactor
with :func:`current_redactor`.

Domain-free on purpose: the medical plugin's datasets refer to series by
UID or hash, and this module keeps the paths they were given out of outputs.
"""
from __future__ import annotations

import copy
import hashlib
import logging
import os
import re
from typing import Any, Iterable

from mmengine.config import Config, ConfigDict

from perception.engine.config import ConfigError

#: keys redacted when a ``privacy`` section names none.
DEFAULT_REDACT_KEYS = ('data_root', 'data_prefix', 'ann_file', 'img_path',
                       'img_dir', 'series_dirs', 'cache_dir', 'index_file')
#: values too short or too generic to search for in free text (they are
#: still replaced in the config).
_MIN_TEXT_LEN = 4
_SALT = os.urandom(16)
# A path continues until whitespace, a quote, a bracket, a comma or ":".
_PATH_TAIL = r"[^\s'\"<>()\[\]{},;:]*"


def _piece(value: str) -> str:
    """A regex for ``value`` as a whole word or path, with its path tail:
    ``data`` matches ``data/ct/1.dcm`` and ``data``, not ``data_time``."""
    head = r'(?<!\w)' if re.match(r'\w', value) else ''
    if value[-1] in '/\\':
        return head + re.escape(value) + _PATH_TAIL
    return head + re.escape(value) + r'(?:[/\\]' + _PATH_TAIL + r'|(?!\w))'


class Redactor:
    """Replace sensitive strings (and paths below them) with tokens.

    Args:
        values: the strings to hide.
    """

    def __init__(self, values: Iterable[str] = ()):
        self.values: set[str] = set()
        self._pattern: re.Pattern | None = None
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        """Hide ``value`` too (also its absolute form when it is a path)."""
        value = str(value)
        if not value or value in self.values:
            return
        self.values.add(value)
        if os.sep in value or value.startswith('.'):
            self.values.add(os.path.abspath(value))
        self._pattern = None

    @staticmethod
    def token(value: str) -> str:
        """The stand-in for ``value`` (stable within this process)."""
        digest = hashlib.sha256(_SALT + str(value).encode('utf-8')).hexdigest()
        return f'<redacted:{digest[:8]}>'

    def _compiled(self) -> re.Pattern | None:
        if self._pattern is None:
            searchable = sorted((v for v in self.values if len(v) >= _MIN_TEXT_LEN),
                                key=len, reverse=True)  # longest first
            if searchable:
                self._pattern = re.compile('|'.join(_piece(v) for v in searchable))
        return self._pattern

    def text(self, text: str) -> str:
        """``text`` with every sensitive value (and its path tail) replaced."""
        pattern = self._compiled()
        if pattern is None or not isinstance(text, str):
            return text
        return pattern.sub(lambda m: self.token(m.group(0)), text)

    def value(self, obj: Any) -> Any:
        """A copy of ``obj`` with every string in it redacted."""
        if isinstance(obj, str):
            return self.text(obj) if obj not in self.values else self.token(obj)
        if isinstance(obj, dict):
            return type(obj)({k: self.value(v) for k, v in obj.items()}) \
                if not isinstance(obj, ConfigDict) else \
                ConfigDict({k: self.value(v) for k, v in obj.items()})
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.value(v) for v in obj)
        return obj


_PRIVATE_ARGS: dict[str, tuple[str, ...]] = {}


def register_private_args(type_name: str, args: Iterable[str]) -> None:
    """Declare that the config arguments ``args`` of components of type
    ``type_name`` (a registered ``type=`` name) may identify people."""
    _PRIVATE_ARGS[type_name] = tuple(_PRIVATE_ARGS.get(type_name, ())) + tuple(args)


def _private_args_of(type_name: str) -> tuple[str, ...]:
    from perception.registry import DATASETS
    try:  # the lookup also imports the plugin that registers the type
        cls = DATASETS.get(type_name)
    except Exception:  # noqa: BLE001 - unknown types fail later, when built
        cls = None
    return tuple(getattr(cls, 'private_args', ())) + _PRIVATE_ARGS.get(type_name, ())


def _declared(obj: Any, out: list[str]) -> None:
    """Values of the private arguments declared by the components in obj."""
    if isinstance(obj, dict):
        kind = obj.get('type')
        private = _private_args_of(kind) if isinstance(kind, str) else ()
        for k, v in obj.items():
            if k in private:
                _collect(v, {k}, out, True)
            else:
                _declared(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _declared(v, out)


def _privacy_section(cfg: Config | dict) -> dict | None:
    section = cfg.get('privacy') if hasattr(cfg, 'get') else None
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError("config: 'privacy' must be a dict, e.g. privacy=dict("
                          "redact_keys=('data_root',)), or dict(enabled=False)")
    return section


def _collect(obj: Any, keys: set[str], out: list[str], under: bool = False) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _collect(v, keys, out, under or k in keys)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _collect(v, keys, out, under)
    elif under and isinstance(obj, str):
        out.append(obj)


def redactor_for(cfg: Config | dict) -> Redactor | None:
    """The :class:`Redactor` a config needs, or None when nothing in it is
    private (no ``privacy`` section, no component declaring private args)."""
    section = _privacy_section(cfg)
    if section is not None and not section.get('enabled', True):
        return None
    body = {k: v for k, v in cfg.items() if k != 'privacy'}
    values: list[str] = []
    _declared(body, values)
    if section is None and not values:
        return None
    if section is not None:
        values += [str(v) for v in section.get('redact_values') or ()]
        keys = set(section.get('redact_keys') or DEFAULT_REDACT_KEYS)
        _collect(body, keys, values)
    return Redactor(values)


def redact_config(cfg: Config, redactor: Redactor) -> Config:
    """A copy of ``cfg`` as it may be shown: logged, dumped, embedded."""
    shown = redactor.value(copy.deepcopy(cfg.to_dict()))
    return Config(shown, filename=cfg.filename)


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites records through a :class:`Redactor`."""

    def __init__(self, redactor: Redactor):
        super().__init__('perception.privacy')
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redactor.text(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def install_log_filter(logger: logging.Logger, redactor: Redactor) -> None:
    """Filter ``logger`` and its handlers (records of other loggers that
    reach the same files pass the handlers)."""
    for target in [logger, *logger.handlers]:
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter(redactor))


#: redactors of guarded runs, by the name of the run's MMLogger.
_BY_LOGGER: dict[str, Redactor] = {}


def current_redactor() -> Redactor | None:
    """The redactor of the current run (the one whose logger mmengine made
    last), or None when that run is not guarded: for code that writes
    outside the runner's logger (prediction dumps, pictures named after
    samples). A later unguarded run is not redacted by an earlier one."""
    from mmengine.logging import MMLogger
    if not _BY_LOGGER or not MMLogger._instance_dict:
        return None
    return _BY_LOGGER.get(MMLogger.get_current_instance().instance_name)


def redact_text(text: str) -> str:
    """``text`` through :func:`current_redactor` (unchanged without one)."""
    redactor = current_redactor()
    return redactor.text(text) if redactor is not None else text


def is_private(text: str, redactor: Redactor | None) -> bool:
    """Whether ``text`` holds a value ``redactor`` hides (False without
    one)."""
    if redactor is None or not isinstance(text, str):
        return False
    return text in redactor.values or redactor.text(text) != text


def _short(text: str, salted: bool = False) -> str:
    salt = _SALT if salted else b''
    return hashlib.sha256(salt + str(text).encode('utf-8', 'surrogateescape')
                          ).hexdigest()[:10]


def sample_name(path: str, meta: dict | None = None,
                redactor: Redactor | None = None) -> str:
    """A file-name-safe name for the sample read from ``path``, for outputs
    named after samples (pictures).

    Returns:
        The file's stem while ``path`` holds nothing ``redactor`` hides (or
        there is no redactor): today's readable names. Otherwise the file
        name is not used: ``series-<digest of series_uid>-slice-0003`` when
        ``meta`` has ``series_uid`` and ``slice_index``, else
        ``sample-<digest of the path>`` (salted per process).
    """
    path = str(path)
    if not is_private(path, redactor):
        return os.path.splitext(os.path.basename(path))[0]
    meta = meta or {}
    if meta.get('series_uid') and meta.get('slice_index') is not None:
        return (f"series-{_short(meta['series_uid'])}"
                f"-slice-{int(meta['slice_index']):04d}")
    return f'sample-{_short(path, salted=True)}'


def sample_caption(path: str, meta: dict | None = None,
                   redactor: Redactor | None = None) -> str:
    """How a picture's caption names the sample read from ``path``: its file
    name, or, when the path is private, ``series <uid> slice <k>`` or the
    redacted token."""
    path = str(path)
    if not is_private(path, redactor):
        return os.path.basename(path)
    meta = meta or {}
    if meta.get('series_uid') and meta.get('slice_index') is not None:
        return f"series {meta['series_uid']} slice {int(meta['slice_index'])}"
    return redactor.token(path)


def private_runner_class(runner_cls: type, cfg: Config | dict) -> type:
    """``runner_cls``, or a subclass that shows only a redacted config.

    Build the runner as usual with ``.from_cfg(cfg)``: components are built
    from the real values, while ``runner.cfg`` (logged, dumped to the work
    dir, given to visualizers, saved in checkpoints) is redacted and the
    runner's logger filters its records.
    """
    redactor = redactor_for(cfg)
    if redactor is None:
        # an unguarded run reusing a guarded run's logger name (same
        # config, same second) must not be taken for it
        _BY_LOGGER.clear()
        return runner_cls
    shown = redact_config(cfg if isinstance(cfg, Config) else Config(cfg), redactor)

    def __init__(self, *args, **kwargs):
        kwargs['cfg'] = shown
        self.redactor = redactor
        runner_cls.__init__(self, *args, **kwargs)

    def build_logger(self, *args, **kwargs):
        logger = runner_cls.build_logger(self, *args, **kwargs)
        install_log_filter(logger, redactor)
        _BY_LOGGER[logger.instance_name] = redactor  # current_redactor()
        return logger

    return type(runner_cls.__name__, (runner_cls, ),
                {'__init__': __init__, 'build_logger': build_logger,
                 '__module__': runner_cls.__module__,
                 '__doc__': runner_cls.__doc__})
