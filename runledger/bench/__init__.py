"""Benchmarks (``runledger bench …``): figures and ratios against baselines measured in the
same run. Not tests: nothing here asserts a speed."""
