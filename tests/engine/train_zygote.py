"""Start ``perception train`` runs quickly for the kill tests: this process
imports perception, torch, timm and mmengine once (running no torch op, so
no thread pool exists yet), then forks one child per run; a child is an
ordinary training process that the test kills with SIGKILL.

Protocol on stdin/stdout, one JSON object a line:
``{"run": [argv...], "env": {...}, "log": path}`` -> ``{"pid": N}``;
``{"wait": N}`` -> ``{"status": exit code or -signal}``.
"""
from __future__ import annotations

import json
import os
import sys


def _child(argv: list[str], env: dict, log: str) -> None:
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    from perception.cli import all_commands
    code = 1
    try:
        code = all_commands()[argv[0]].main(argv[1:])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    import mmengine.runner  # noqa: F401
    import timm  # noqa: F401

    import perception.apis  # noqa: F401
    import perception.engine  # noqa: F401
    import perception.models  # noqa: F401
    from perception.cli import all_commands
    all_commands()
    print(json.dumps({'ready': True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if 'run' in request:
            pid = os.fork()
            if pid == 0:
                _child(request['run'], request.get('env') or {},
                       request['log'])
            reply = {'pid': pid}
        else:
            _, status = os.waitpid(int(request['wait']), 0)
            reply = {'status': os.waitstatus_to_exitcode(status)}
        print(json.dumps(reply), flush=True)


if __name__ == '__main__':
    main()
