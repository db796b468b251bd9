#!/bin/bash
cd /work/bench-plan
./rerun.sh x busybox-run "cached push" 3
./rerun.sh x debian-apt "cached change push" 3
./rerun.sh x multistage "cold push" 3
./rerun.sh x dockerignore "cold cached change export push" 3
./rerun.sh x scratch-copy-many "cold" 3
./rerun.sh x scratch-copy-big "cached change export push" 3
echo ALLDONE
