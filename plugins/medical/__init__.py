"""perception_medical: DICOM reading, series geometry, CT datasets, FROC,
windowing presets and de-identification."""
from perception.commands import NotAvailableCommand
from perception.registry import COMMANDS

__version__ = '0.1.0'


@COMMANDS.register_module(name='deid')
class DeidCommand(NotAvailableCommand):
    name = 'deid'
    help = 'de-identify DICOM files (PS3.15 basic profile)'


@COMMANDS.register_module(name='synth-ct')
class SynthCtCommand(NotAvailableCommand):
    name = 'synth-ct'
    help = 'write synthetic CT studies as DICOM'
