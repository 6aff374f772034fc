"""What a synthetic drive can be asked for: its lighting, its weather and
the formats it is written in. Plain names with no imports, so the
``synth-drive`` command builds its parser without loading the renderer."""

LIGHTINGS = ('day', 'dusk', 'night')
WEATHERS = ('clear', 'rain', 'fog')
#: Output formats of :func:`~.drive.write_drive` (image folders are always
#: written: the label formats link to them).
#: ``cityscapes`` holds the label maps (ids with a class map); ``bdd100k``
#: also gets sem_seg and drivable masks.
FORMATS = ('images', 'video', 'rig', 'bag', 'kitti', 'bdd100k', 'coco',
           'nuimages', 'cityscapes')
