#!/bin/sh
# The doctor matrix (issue 8): `rawctap doctor` on every vcard personality x
# {no PIN, PIN set, PIN given} x every fault profile that applies, each cell
# on a fresh card, expected codes worked out in doctor_matrix.py from what the
# card is and what the fault does. Prints the matrix as a table, then one
# line per cell; no cell may advise a reset where the card does not need it.
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
exec /usr/bin/python3 tests/e2e/doctor_matrix.py "$BUILD/bin" --jobs "${MATRIX_JOBS:-8}"
