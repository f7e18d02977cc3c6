"""Benchmarks (`hemma bench ...`): each prints its figures against a baseline measured in the same
run. Not part of any shipped service."""
