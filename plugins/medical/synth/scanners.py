"""Scanner profiles of synthetic CT studies: who made the scanner, its
model, tube voltage, image noise and slice thickness, written into the
headers (``Manufacturer``, ``ManufacturerModelName``, ``KVP``,
``SliceThickness``) so subgroup reports have groups to compare.

The names are made up. Noise is the standard deviation (HU) of the
correlated image noise: the default catalogue's third scanner is a
low-dose protocol with about five times the noise of the first, so a
detector trained on the mixture does visibly worse on it (the weak
subgroup a report must find).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ScannerProfile:
    """One scanner / protocol.

    Attributes:
        manufacturer, model: header names.
        kvp: tube voltage (kV).
        noise_hu: standard deviation of the image noise (HU).
        slice_thickness_mm: slice spacing = thickness; None: the study's
            ``coverage_mm / n_slices``.
    """

    manufacturer: str
    model: str
    kvp: float = 120.0
    noise_hu: float = 12.0
    slice_thickness_mm: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


#: the scanners ``perception synth-ct --scanners N`` takes, in order
CATALOGUE = (
    ScannerProfile('Orion Medical', 'Orion CT 128', 120.0, 10.0),
    ScannerProfile('Borealis Imaging', 'Aurora 64', 100.0, 16.0),
    ScannerProfile('Cygnus Systems', 'LowDose 16', 80.0, 50.0),
    ScannerProfile('Orion Medical', 'Orion CT 64', 120.0, 12.0),
)
#: what a study without scanner options is made with (as before)
DEFAULT_SCANNER = ScannerProfile('perception synthetic CT', 'phantom',
                                 120.0, 12.0)


def parse_scanner(spec: str) -> ScannerProfile:
    """``'MANUFACTURER:MODEL:KVP:NOISE_HU[:THICKNESS_MM]'`` -> profile."""
    parts = spec.split(':')
    if not 4 <= len(parts) <= 5:
        raise ValueError(f'--scanner {spec!r}: expected MANUFACTURER:MODEL:'
                         'KVP:NOISE_HU[:THICKNESS_MM], e.g. '
                         "'Acme:CT 64:120:12:2.5'")
    try:
        numbers = [float(p) for p in parts[2:]]
    except ValueError:
        raise ValueError(f'--scanner {spec!r}: KVP, NOISE_HU and THICKNESS_MM '
                         'must be numbers') from None
    if any(v <= 0 for v in numbers[:1] + numbers[2:]) or numbers[1] < 0:
        raise ValueError(f'--scanner {spec!r}: KVP and THICKNESS_MM must be '
                         '> 0, NOISE_HU >= 0')
    return ScannerProfile(parts[0].strip(), parts[1].strip(), numbers[0],
                          numbers[1], numbers[2] if len(numbers) > 2 else None)


def catalogue(n: int) -> tuple[ScannerProfile, ...]:
    """The first ``n`` scanners of :data:`CATALOGUE`."""
    if not 1 <= n <= len(CATALOGUE):
        raise ValueError(f'--scanners must be 1..{len(CATALOGUE)}, got {n}; '
                         'give more with --scanner SPEC')
    return CATALOGUE[:n]
