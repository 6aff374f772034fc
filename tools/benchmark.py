"""Thin wrapper in the OpenMMLab habit: same as `perception benchmark ...`."""
import sys

from perception.commands import all_commands

if __name__ == '__main__':
    sys.exit(all_commands()['benchmark'].main(sys.argv[1:]))
