"""The front ends: the only package that parses arguments or asks questions."""
