#!/usr/bin/env bash
# Distributed training on one machine (mmengine's tools/dist_train.sh):
#   tools/dist_train.sh CONFIG GPUS [perception train options]
# Without a GPU the processes talk over gloo on the CPU.
# PYTHON picks the interpreter (default: python on PATH, e.g. .venv/bin).
PYTHON=${PYTHON:-python}
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
$PYTHON -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
