"""Thin wrapper in the OpenMMLab habit: same as `perception train ...`."""
import sys

from perception.cli import main

if __name__ == '__main__':
    sys.exit(main(['train', *sys.argv[1:]]))
