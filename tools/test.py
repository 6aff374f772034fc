"""Thin wrapper in the OpenMMLab habit: same as `perception test ...`."""
import sys

from perception.commands import all_commands

if __name__ == '__main__':
    sys.exit(all_commands()['test'].main(sys.argv[1:]))
