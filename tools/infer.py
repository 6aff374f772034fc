"""Thin wrapper in the OpenMMLab habit: same as `perception infer ...`."""
import sys

from perception.cli import main

if __name__ == '__main__':
    sys.exit(main(['infer', *sys.argv[1:]]))
