"""Thin wrapper in the OpenMMLab habit: same as `perception test ...`."""
import sys

from perception.cli import main

if __name__ == '__main__':
    sys.exit(main(['test', *sys.argv[1:]]))
