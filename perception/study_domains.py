"""The domains of ``perception benchmark label-efficiency``: what a plugin
tells the core's study runner (:mod:`perception.engine.label_study`) about
its data: the pretraining config (no labels), the detection configs from
scratch and from the pretrained encoder, the commands that generate the
data, what a label fraction means (a share of images, or a number of
patients) and the metrics of its table.

A plugin registers its domain when imported (``register_study_domain``),
as it registers classes in the core's registries; nothing here imports
torch."""
from __future__ import annotations

from dataclasses import dataclass

from perception.errors import UserError

__all__ = ['StudyDomain', 'register_study_domain', 'study_domains', 'get_study_domain',
           'UnknownDomainError']


class UnknownDomainError(UserError, KeyError):
    """No plugin registered a study domain of that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ''


@dataclass(frozen=True)
class StudyDomain:
    """One domain of the label-efficiency study.

    Attributes:
        name: ``--domain`` value, e.g. ``'driving'``.
        pretrain_config: masked pretraining on every training frame/slice.
        scratch_config, pretrained_config: the same detector and schedule,
            its backbone from random weights / from ``pretrain_config``'s
            work dir (``init_cfg`` on the backbone).
        fraction_kind: ``'images'`` (a share of the labelled images, in
            (0, 1]) or ``'patients'`` (a number of training patients, >= 2,
            or ``'all'``).
        fractions: the default fractions, e.g. ``(0.01, 0.1, 1.0)``.
        focus: the fraction of the seed spread and the ablation rows
            (three seeds; linear probe, LoRA, layer decay off).
        metrics: ``(metric key, column name)`` pairs; the first is plotted.
        group_key: the data-info field naming a sample's patient.
        data_commands: ``perception`` argument lists that make the data
            (run when ``data_check`` paths are missing).
        data_check: paths (relative to the working directory) that exist
            once the data is there.
        cfg_options: ``KEY=VALUE`` overrides for every fine-tuning run.
        note: one line for the report (where the data comes from).
    """

    name: str
    pretrain_config: str
    scratch_config: str
    pretrained_config: str
    fraction_kind: str
    fractions: tuple
    focus: float | int
    metrics: tuple[tuple[str, str], ...]
    group_key: str = 'patient'
    data_commands: tuple[tuple[str, ...], ...] = ()
    data_check: tuple[str, ...] = ()
    cfg_options: tuple[str, ...] = ()
    note: str = ''

    def __post_init__(self) -> None:
        if self.fraction_kind not in ('images', 'patients'):
            raise ValueError(f"StudyDomain {self.name!r}: fraction_kind must "
                             f"be 'images' or 'patients', got "
                             f'{self.fraction_kind!r}')


_DOMAINS: dict[str, StudyDomain] = {}


def register_study_domain(domain: StudyDomain) -> StudyDomain:
    """Add ``domain`` (by its name; a second registration of the same name
    by another object is an error)."""
    existing = _DOMAINS.get(domain.name)
    if existing is not None and existing != domain:
        raise ValueError(f'study domain {domain.name!r} is registered twice')
    _DOMAINS[domain.name] = domain
    return domain


def study_domains(load: bool = True) -> dict[str, StudyDomain]:
    """The registered domains by name (``load``: load the plugins first)."""
    if load:
        from perception.plugins import load_plugins
        load_plugins()
    return dict(sorted(_DOMAINS.items()))


def get_study_domain(name: str) -> StudyDomain:
    """The domain ``name``, or :class:`UnknownDomainError` naming those
    registered."""
    domains = study_domains()
    if name not in domains:
        raise UnknownDomainError(
            f"unknown study domain '{name}'; registered: "
            f"{', '.join(domains) or 'none'} (a plugin registers its domain; "
            '`perception plugins` lists those loaded)')
    return domains[name]
