"""Thin wrapper in the OpenMMLab habit: same as `perception benchmark ...`."""
import sys

from perception.cli import main

if __name__ == '__main__':
    sys.exit(main(['benchmark', *sys.argv[1:]]))
