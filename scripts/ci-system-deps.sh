# System packages the test suite needs beyond Python (none yet).
true
