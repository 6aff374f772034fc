"""Thin wrapper in the OpenMMLab habit: same as `perception export ...`."""
import sys

from perception.cli import main

if __name__ == '__main__':
    sys.exit(main(['export', *sys.argv[1:]]))
