#!/bin/bash
# round.sh TAG RUNS : before then after
cd /work/bench-plan
./pass.sh before "$1" "$2"
./pass.sh after "$1" "$2"
